//! Which thread and participant a message is for: reply addresses checked at `RCPT TO`, and
//! for a whole message its recipients, its own recipient headers, then the notifications it
//! names in `In-Reply-To`/`References`.

use std::ops::ControlFlow;

use tracing::warn;

use super::read::Parsed;
use super::{Envelope, Incoming, Pipeline, Step, Stop};
use crate::crypto::token::{
    token_in_address, verify_bounce_address, verify_notification_message_id,
};
use crate::crypto::{ReplyToken, TokenError};
use crate::domain::NotificationId;
use crate::domain::fate::Unfiled;
use crate::store::{StoreError, TokenTarget};

/// Most Message-IDs of a reply's References looked up in the database: a header can list
/// thousands, and only the latest few can be ours.
const MAX_REFERENCE_LOOKUPS: usize = 10;

/// What an address at `RCPT TO` is, once checked.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// A reply address whose token's signature verified and whose participant may write. Its
    /// lifetime may be over (`expired`): the reply is then held if its sender proves to be the
    /// participant, refused after `DATA` if not.
    Reply(TokenTarget),
    /// A bounce address Sealpost handed out.
    Bounce(NotificationId),
    /// postmaster, which RFC 5321 requires to exist.
    Postmaster,
}

impl Recipient {
    /// Mail for these addresses is a report (a bounce, mail to postmaster), never a reply: it
    /// gets a much smaller size limit.
    pub fn is_report(&self) -> bool {
        matches!(self, Recipient::Bounce(_) | Recipient::Postmaster)
    }
}

/// Why an address is refused at `RCPT TO`: 550 5.1.1, except [`Unavailable`] (451).
///
/// [`Unavailable`]: RecipientError::Unavailable
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("no such address")]
    Unknown,
    #[error("reply token rejected ({0})")]
    Token(&'static str),
    #[error("the token's participant no longer exists")]
    Gone,
    #[error("the token's participant was removed from the thread")]
    Revoked,
    /// The database could not be asked: a temporary failure, never a refusal for good.
    #[error("cannot check the address now")]
    Unavailable,
}

/// How a reply reached its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Link {
    /// A verified reply token (the recipient address or the message's own recipient headers).
    Token,
    /// Only a Message-ID of one of our notifications, in In-Reply-To or References.
    Reference,
}

impl Pipeline {
    /// Verifies a reply token (keyring only, constant time), then looks its participant up. A
    /// token whose signature verifies but whose lifetime is over names its participant too,
    /// marked expired: what it carries is still a reply of theirs.
    async fn target(&self, token: &str) -> Result<TokenTarget, RecipientError> {
        let now = self.store.clock().now();
        let (claims, expired) = match ReplyToken::verify(token, &self.keyring, now, self.ttl_days) {
            Ok(t) => (t.claims, false),
            Err(TokenError::Expired { claims, .. }) => (claims, true),
            Err(e) => return Err(RecipientError::Token(e.reason())),
        };
        let mut target = self
            .store
            .token_target(&claims)
            .await
            .map_err(|e| {
                warn!(error = %e, "cannot look up a token's participant");
                RecipientError::Unavailable
            })?
            .ok_or(RecipientError::Gone)?;
        if target.participant.revoked {
            return Err(RecipientError::Revoked);
        }
        target.expired = expired;
        Ok(target)
    }

    /// Decides an address given at `RCPT TO`. Forged reply addresses are refused here, so
    /// their mail never reaches DATA and Sealpost never bounces to a forged sender.
    pub async fn check_recipient(&self, address: &str) -> Result<Recipient, RecipientError> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        if let Some(token) = token_in_address(address, &self.reply_domain) {
            return self.target(token).await.map(Recipient::Reply);
        }
        if let Some(id) = verify_bounce_address(address, &self.keyring, &self.reply_domain) {
            return match self.store.notification_thread(NotificationId(id)).await {
                Ok(Some(_)) => Ok(Recipient::Bounce(NotificationId(id))),
                Ok(None) => Err(RecipientError::Unknown),
                Err(e) => {
                    warn!(error = %e, "cannot look up a bounce address's notification");
                    Err(RecipientError::Unavailable)
                }
            };
        }
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        if local.eq_ignore_ascii_case("postmaster")
            && (domain.is_empty()
                || domain.eq_ignore_ascii_case(&self.reply_domain)
                || domain.eq_ignore_ascii_case(&self.hostname))
        {
            return Ok(Recipient::Postmaster);
        }
        Err(RecipientError::Unknown)
    }

    /// The thread and participant the message answers, and how it says so. Mail that names
    /// none is for postmaster (held for whoever runs the mail system) or for nobody.
    pub(super) async fn target_of(
        &self,
        m: &Incoming<'_>,
        parsed: &Parsed,
    ) -> Step<(TokenTarget, Link)> {
        if let Some(found) = self.find_target(m.envelope, parsed).await? {
            return Ok(ControlFlow::Continue(found));
        }
        let postmaster = m.envelope.rcpt_to.iter().any(|r| {
            r.trim_matches(|c| c == '<' || c == '>')
                .split('@')
                .next()
                .is_some_and(|l| l.eq_ignore_ascii_case("postmaster"))
        });
        let item = self.ledger(m, None, Some(parsed.header_id.clone()));
        let why = if postmaster {
            Unfiled::ToPostmaster
        } else {
            Unfiled::NoReplyAddress
        };
        self.unfiled(m, item, why, None, None)
            .await
            .map(ControlFlow::Break)
    }

    /// The target of the first reply token found — recipient addresses, then the message's
    /// own recipient headers — else the participant of a notification the message names in
    /// In-Reply-To/References.
    async fn find_target(
        &self,
        envelope: &Envelope,
        parsed: &Parsed,
    ) -> Result<Option<(TokenTarget, Link)>, Stop> {
        if let Some(t) = envelope.verified.first() {
            return Ok(Some((t.clone(), Link::Token)));
        }
        let mut candidates: Vec<&str> = envelope
            .rcpt_to
            .iter()
            .filter_map(|r| token_in_address(r, &self.reply_domain))
            .collect();
        candidates.extend(parsed.header_tokens.iter().map(String::as_str));
        candidates.dedup();
        for token in candidates {
            match self.target(token).await {
                Ok(t) => return Ok(Some((t, Link::Token))),
                Err(RecipientError::Unavailable) => {
                    return Err(Stop::Temporary(StoreError::Unavailable(
                        "cannot look up a token's participant".into(),
                    )));
                }
                Err(_) => {}
            }
        }
        let ours = |id: &&String| {
            id.rsplit_once('@').is_some_and(|(_, d)| {
                d.trim_end_matches('>')
                    .eq_ignore_ascii_case(&self.reply_domain)
            })
        };
        for id in parsed
            .references
            .iter()
            .filter(ours)
            .take(MAX_REFERENCE_LOOKUPS)
        {
            let notification =
                match verify_notification_message_id(id, &self.keyring, &self.reply_domain) {
                    Some(n) => Some(NotificationId(n)),
                    // Earlier versions' ids are matched exactly against what was sent.
                    None => self
                        .store
                        .notification_by_email_id(id.trim_matches(|c| c == '<' || c == '>'))
                        .await?
                        .map(|(n, _)| n),
                };
            let Some(notification) = notification else {
                continue;
            };
            if let Some(t) = self.store.notification_target(notification).await?
                && !t.participant.revoked
            {
                return Ok(Some((t, Link::Reference)));
            }
        }
        Ok(None)
    }
}
