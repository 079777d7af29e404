//! Mail that is not a person's reply: auto-replies and loops (ignored, with their reason), and
//! delivery reports about our notifications (recorded; a verified one changes a status).

use std::ops::ControlFlow;

use super::read::Parsed;
use super::{Envelope, Incoming, Outcome, Pipeline, Step, Stop};
use crate::crypto::token::verify_bounce_address;
use crate::domain::{LedgerOutcome, NotificationId, Via};
use crate::inbound::classify::{Class, Dsn};
use crate::store::InboundAction;

impl Pipeline {
    /// Classification comes first: an auto-reply, a loop or a bounce is never filed, token or
    /// not.
    pub(super) async fn classify(&self, m: &Incoming<'_>, parsed: &Parsed) -> Step<()> {
        let header_id = Some(parsed.header_id.clone());
        let item = || self.ledger(m, None, header_id.clone());
        match &parsed.class {
            Class::Loop => self.settle(item(), LedgerOutcome::Ignored, "loop").await,
            Class::AutoReply(why) => {
                self.record(item(), LedgerOutcome::Ignored, why, None)
                    .await?;
                Ok(ControlFlow::Break(Outcome::Ignored {
                    reason: "auto-reply",
                }))
            }
            Class::Bounce(dsn) => Ok(ControlFlow::Break(
                self.delivery_status(m.envelope, parsed, m.id, header_id.clone(), dsn)
                    .await?,
            )),
            Class::Personal => Ok(ControlFlow::Continue(())),
        }
    }

    async fn delivery_status(
        &self,
        envelope: &Envelope,
        parsed: &Parsed,
        id: i64,
        header_id: Option<String>,
        dsn: &Dsn,
    ) -> Result<Outcome, Stop> {
        // Evidence: a null sender, and the notification's own MAC-tagged bounce address as the
        // recipient (for the IMAP door, where the final MTA recorded it delivered).
        let addressed: Vec<&String> = match envelope.door {
            Via::Imap => parsed.delivered_to.iter().collect(),
            _ => envelope.rcpt_to.iter().collect(),
        };
        let verified = addressed
            .iter()
            .find_map(|r| verify_bounce_address(r, &self.keyring, &self.reply_domain))
            .filter(|_| envelope.null_sender)
            .map(NotificationId);
        let named = match (verified, &dsn.original_message_id) {
            (Some(n), _) => Some(n),
            (None, Some(orig)) => self
                .store
                .notification_by_email_id(orig)
                .await?
                .map(|(n, _)| n),
            (None, None) => None,
        };
        let Some(notification) = named else {
            let item = self.ledger_for(envelope, id, None, header_id);
            self.record(item, LedgerOutcome::Ignored, "unmatched-bounce", None)
                .await?;
            return Ok(Outcome::Ignored {
                reason: "unmatched-bounce",
            });
        };
        let thread = self.store.notification_thread(notification).await?;
        let mut item = self.ledger_for(envelope, id, thread, header_id);
        let detail = match (&dsn.status, &dsn.diagnostic) {
            _ if dsn.complaint.is_some() => format!(
                "complaint ({}) from the recipient's mail provider",
                dsn.complaint.as_deref().unwrap_or("abuse")
            ),
            (Some(s), Some(d)) => format!("{s} {d}"),
            (Some(s), None) => s.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "bounce without a delivery report".to_owned(),
        };
        item.action = InboundAction::DeliveryStatus {
            notification,
            failed: dsn.is_failure() || dsn.action.is_empty(),
            verified: verified.is_some(),
            complaint: dsn.complaint.is_some(),
            detail: detail
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect(),
        };
        self.store.commit_inbound(item).await?;
        Ok(Outcome::DeliveryStatus { notification })
    }
}
