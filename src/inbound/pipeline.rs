//! The one inbound pipeline: raw bytes in, an [`Outcome`] out, the same for every door.
//!
//! parse → classify (loop, auto-reply, bounce) → find and verify the reply token (recipient
//! address, then the message's own recipient headers, then In-Reply-To/References) → check the
//! sender is the token's participant → check the thread takes email replies → dedupe by
//! Message-ID → extract the reply text → seal → commit (with notifications for the others).
//!
//! The outcome is a value; the SMTP door turns it into a reply code, the IMAP door into a move.
//! Each outcome is logged once, with ids and reasons only: never content, never a token.

use std::sync::Arc;

use mail_parser::{Address as HeaderAddress, HeaderValue, Message, MessageParser};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::classify::{Class, classify, referenced_ids};
use super::committer::Committer;
use super::reply_text;
use crate::clock;
use crate::crypto::token::{token_in_address, verify_bounce_address};
use crate::crypto::{Binding, Keyring, ReplyToken, TokenError};
use crate::domain::{Address, MessageId, Mode, NotificationId, ThreadId, Via};
use crate::outbound::compose::REPLY_MARKER;
use crate::outbound::compose::token_of;
use crate::store::{
    Committed, Door, Inbound, InboundAction, NoticeReason, SealedMessage, Store, StoreError,
    TokenTarget,
};

/// The SMTP envelope, or what the IMAP door knows of it.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The reverse path, when known and not null.
    pub mail_from: Option<String>,
    /// The reverse path is the null sender `<>` (bounces). The IMAP door only knows this from a
    /// `Return-Path: <>` header; a missing header is not a null sender.
    pub null_sender: bool,
    pub rcpt_to: Vec<String>,
    /// Reply addresses already verified at `RCPT TO` (the SMTP door), in order.
    pub verified: Vec<TokenTarget>,
    pub door: Door,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Filed {
        thread: ThreadId,
        message: MessageId,
    },
    Duplicate {
        thread: ThreadId,
    },
    Rejected {
        reason: &'static str,
    },
    DeliveryStatus {
        notification: NotificationId,
    },
    Ignored {
        reason: &'static str,
    },
}

impl Outcome {
    /// Filed or a duplicate of something filed: the message is safely in its thread.
    pub fn is_filed(&self) -> bool {
        matches!(self, Outcome::Filed { .. } | Outcome::Duplicate { .. })
    }
}

/// What an address at `RCPT TO` is, once checked.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// A reply address whose token verified and whose participant may write.
    Reply(TokenTarget),
    /// A bounce address Sealpost handed out.
    Bounce(NotificationId),
    /// postmaster, which RFC 5321 requires to exist.
    Postmaster,
}

/// Why an address is refused at `RCPT TO` (all answered 550 5.1.1).
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
}

/// A failure that means "try again later" (SMTP 451, IMAP: leave the message in place).
#[derive(Debug, thiserror::Error)]
#[error("temporary failure: {0}")]
pub struct Temporary(#[from] pub StoreError);

/// The pipeline, shared by every session.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    keyring: Arc<Keyring>,
    committer: Committer,
    reply_domain: String,
    hostname: String,
    ttl_days: u32,
    outbox: Arc<Notify>,
    /// Configured text every notification carries (organisation, notice), recognised in
    /// replies like the messages themselves.
    boilerplate: Vec<String>,
}

impl Pipeline {
    /// The configured text Sealpost's notifications carry besides the messages.
    pub fn with_boilerplate(mut self, texts: Vec<String>) -> Pipeline {
        self.boilerplate = texts;
        self
    }

    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        committer: Committer,
        reply_domain: &str,
        hostname: &str,
        ttl_days: u32,
        outbox: Arc<Notify>,
    ) -> Pipeline {
        Pipeline {
            store,
            keyring,
            committer,
            reply_domain: reply_domain.to_ascii_lowercase(),
            hostname: hostname.to_ascii_lowercase(),
            ttl_days,
            outbox,
            boilerplate: Vec::new(),
        }
    }

    /// Verifies a reply token (keyring only, constant time), then looks its participant up.
    async fn target(&self, token: &str) -> Result<TokenTarget, RecipientError> {
        let verified = ReplyToken::verify(token, &self.keyring, clock::now(), self.ttl_days)
            .map_err(|e: TokenError| RecipientError::Token(e.reason()))?;
        let target = self
            .store
            .token_target(&verified.claims)
            .await
            .map_err(|e| {
                warn!(error = %e, "cannot look up a token's participant");
                RecipientError::Gone
            })?
            .ok_or(RecipientError::Gone)?;
        if target.participant.revoked {
            return Err(RecipientError::Revoked);
        }
        Ok(target)
    }

    /// Decides an address given at `RCPT TO`. Forged or stale reply addresses are refused
    /// here, so their mail never reaches DATA and Sealpost never bounces to a forged sender.
    pub async fn check_recipient(&self, address: &str) -> Result<Recipient, RecipientError> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        if let Some(token) = token_in_address(address, &self.reply_domain) {
            return self.target(token).await.map(Recipient::Reply);
        }
        if let Some(id) = verify_bounce_address(address, &self.keyring, &self.reply_domain) {
            return match self.store.notification_thread(NotificationId(id)).await {
                Ok(Some(_)) => Ok(Recipient::Bounce(NotificationId(id))),
                _ => Err(RecipientError::Unknown),
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

    /// Runs a whole message through the pipeline. `Err` means a storage failure: the door
    /// must ask for a retry (SMTP 451) and must not treat the message as handled.
    pub async fn process(&self, envelope: &Envelope, raw: &[u8]) -> Result<Outcome, Temporary> {
        let outcome = self.decide(envelope, raw).await?;
        match &outcome {
            Outcome::Filed { thread, message } => {
                info!(door = envelope.door.as_str(), outcome = "filed", %thread, message_id = %message, "inbound message filed")
            }
            Outcome::Duplicate { thread } => {
                info!(door = envelope.door.as_str(), outcome = "duplicate", %thread, "inbound message already filed")
            }
            Outcome::Rejected { reason } => {
                info!(
                    door = envelope.door.as_str(),
                    outcome = "rejected",
                    reason,
                    "inbound message not filed"
                )
            }
            Outcome::DeliveryStatus { notification } => {
                info!(door = envelope.door.as_str(), outcome = "delivery-status", %notification, "delivery report recorded")
            }
            Outcome::Ignored { reason } => {
                info!(
                    door = envelope.door.as_str(),
                    outcome = "ignored",
                    reason,
                    "inbound message ignored"
                )
            }
        }
        if matches!(outcome, Outcome::Filed { .. }) {
            self.outbox.notify_one();
        }
        Ok(outcome)
    }

    fn ledger(
        &self,
        envelope: &Envelope,
        thread: Option<ThreadId>,
        header_id: Option<String>,
    ) -> Inbound {
        Inbound {
            id: MessageId::random().0,
            door: envelope.door,
            received_at: clock::now(),
            thread,
            header_message_id: header_id,
            imap: envelope.imap,
            raw_sealed: None,
            action: InboundAction::Record {
                outcome: "ignored",
                reason: String::new(),
                notice: None,
            },
        }
    }

    /// Records an outcome that files nothing.
    async fn record(
        &self,
        mut item: Inbound,
        outcome: &'static str,
        reason: &'static str,
        notice: Option<(crate::domain::ParticipantId, NoticeReason)>,
    ) -> Result<(), Temporary> {
        item.action = InboundAction::Record {
            outcome,
            reason: reason.to_owned(),
            notice,
        };
        self.committer.commit(item).await?;
        Ok(())
    }

    async fn decide(&self, envelope: &Envelope, raw: &[u8]) -> Result<Outcome, Temporary> {
        let Some(message) = MessageParser::default()
            .parse(raw)
            .filter(|m| !m.headers().is_empty())
        else {
            self.record(
                self.ledger(envelope, None, None),
                "rejected",
                "malformed",
                None,
            )
            .await?;
            return Ok(Outcome::Rejected {
                reason: "malformed",
            });
        };
        let header_id = Some(
            message
                .message_id()
                .map(|m| m.to_owned())
                .unwrap_or_else(|| {
                    format!(
                        "sha256:{}",
                        data_encoding::HEXLOWER.encode(&Sha256::digest(raw))
                    )
                }),
        );

        // Classification comes first: an auto-reply or a bounce is never filed, token or not.
        match classify(&message, envelope.null_sender) {
            Class::Loop => {
                self.record(
                    self.ledger(envelope, None, header_id),
                    "ignored",
                    "loop",
                    None,
                )
                .await?;
                return Ok(Outcome::Ignored { reason: "loop" });
            }
            Class::AutoReply(why) => {
                self.record(self.ledger(envelope, None, header_id), "ignored", why, None)
                    .await?;
                return Ok(Outcome::Ignored {
                    reason: "auto-reply",
                });
            }
            Class::Bounce(dsn) => return self.delivery_status(envelope, header_id, dsn).await,
            Class::Personal => {}
        }

        // The reply token.
        let Some(target) = self.find_target(envelope, &message).await else {
            let postmaster = envelope.rcpt_to.iter().any(|r| {
                r.trim_matches(|c| c == '<' || c == '>')
                    .split('@')
                    .next()
                    .is_some_and(|l| l.eq_ignore_ascii_case("postmaster"))
            });
            let (outcome, reason) = if postmaster {
                ("ignored", "postmaster")
            } else {
                ("rejected", "no-valid-token")
            };
            self.record(
                self.ledger(envelope, None, header_id),
                outcome,
                reason,
                None,
            )
            .await?;
            return Ok(if postmaster {
                Outcome::Ignored { reason }
            } else {
                Outcome::Rejected { reason }
            });
        };
        let thread = target.thread;
        let participant = target.participant.id;
        let mut item = self.ledger(envelope, Some(thread), header_id.clone());
        let key = self.store.thread_key(thread).await?;
        item.raw_sealed = Some(key.seal(Binding::InboundRaw(thread, item.id), raw));

        // The sender must be the token's participant: a forwarded notification answered by
        // someone else is not filed, and nobody unverified is ever written to.
        let from = first_address(message.from());
        let from_ok = from
            .as_ref()
            .is_some_and(|a| *a == target.participant.address);
        let envelope_ok = match envelope.mail_from.as_deref().filter(|s| !s.is_empty()) {
            None => true,
            Some(sender) => Address::parse(sender).is_ok_and(|a| a == target.participant.address),
        };
        if !from_ok || !envelope_ok {
            let reason = if from_ok {
                "envelope-sender-mismatch"
            } else {
                "sender-mismatch"
            };
            self.record(item, "rejected", reason, None).await?;
            return Ok(Outcome::Rejected { reason });
        }
        if target.mode == Mode::Secure {
            self.record(
                item,
                "rejected",
                "secure-thread",
                Some((participant, NoticeReason::SecureThread)),
            )
            .await?;
            return Ok(Outcome::Rejected {
                reason: "secure-thread",
            });
        }
        if target.closed {
            self.record(
                item,
                "rejected",
                "thread-closed",
                Some((participant, NoticeReason::ThreadClosed)),
            )
            .await?;
            return Ok(Outcome::Rejected {
                reason: "thread-closed",
            });
        }
        // A Message-ID filed before is recognised inside the commit (the only race-free place).
        let text = match reply_text::body_of(&message) {
            // The marker line settles where our notification starts; the words of what was sent
            // are only needed (and read) when it is gone.
            Some(body) if body.contains(REPLY_MARKER) => reply_text::from_body(&body).text,
            Some(body) => {
                // What this person was sent: the latest messages and, when the reply answers an
                // older notification, the messages that one carried.
                let answered = referenced_ids(&message)
                    .iter()
                    .find_map(|id| crate::outbound::compose::notification_of(id));
                let sent = self.store.sent_bodies(thread, &key, answered, 11).await?;
                let known = reply_text::Known::new(&sent).with_boilerplate(&self.boilerplate);
                reply_text::from_body_knowing(&body, &known).text
            }
            None => String::new(),
        };
        if text.trim().is_empty() {
            // Held, not filed: the raw message is kept (sealed) for staff to look at.
            self.record(
                item,
                "held",
                "empty-reply",
                Some((participant, NoticeReason::EmptyReply)),
            )
            .await?;
            return Ok(Outcome::Rejected {
                reason: "empty-reply",
            });
        }
        let via = match envelope.door {
            Door::Smtp => Via::Smtp,
            Door::Imap => Via::Imap,
        };
        item.action =
            InboundAction::File(SealedMessage::seal(thread, &key, participant, &text, via));
        match self.committer.commit(item).await {
            Ok(Committed::Filed(posted)) => Ok(Outcome::Filed {
                thread,
                message: posted.message_id,
            }),
            Ok(_) => Ok(Outcome::Duplicate { thread }),
            Err(StoreError::ThreadClosed(_)) => Ok(Outcome::Rejected {
                reason: "thread-closed",
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The verified target of the first reply token found: recipient addresses, then the
    /// message's own recipient headers, then the Message-IDs it answers.
    async fn find_target(&self, envelope: &Envelope, m: &Message<'_>) -> Option<TokenTarget> {
        if let Some(t) = envelope.verified.first() {
            return Some(t.clone());
        }
        let mut candidates: Vec<String> = envelope
            .rcpt_to
            .iter()
            .filter_map(|r| token_in_address(r, &self.reply_domain).map(str::to_owned))
            .collect();
        for name in ["Delivered-To", "X-Original-To", "To", "Cc"] {
            for value in m.header_values(name) {
                for addr in header_addresses(value) {
                    if let Some(t) = token_in_address(&addr, &self.reply_domain) {
                        candidates.push(t.to_owned());
                    }
                }
            }
        }
        for id in referenced_ids(m) {
            let domain_ok = id
                .rsplit_once('@')
                .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&self.reply_domain));
            if let Some(t) = token_of(&id).filter(|_| domain_ok) {
                candidates.push(t.to_owned());
            }
        }
        candidates.dedup();
        for token in candidates {
            if let Ok(t) = self.target(&token).await {
                return Some(t);
            }
        }
        None
    }

    async fn delivery_status(
        &self,
        envelope: &Envelope,
        header_id: Option<String>,
        dsn: super::classify::Dsn,
    ) -> Result<Outcome, Temporary> {
        let mut notification = None;
        for r in &envelope.rcpt_to {
            if let Some(id) = verify_bounce_address(r, &self.keyring, &self.reply_domain) {
                notification = Some(NotificationId(id));
            }
        }
        if notification.is_none()
            && let Some(orig) = &dsn.original_message_id
        {
            notification = self
                .store
                .notification_by_email_id(orig)
                .await?
                .map(|(n, _)| n);
        }
        let Some(notification) = notification else {
            self.record(
                self.ledger(envelope, None, header_id),
                "ignored",
                "unmatched-bounce",
                None,
            )
            .await?;
            return Ok(Outcome::Ignored {
                reason: "unmatched-bounce",
            });
        };
        let thread = self.store.notification_thread(notification).await?;
        let mut item = self.ledger(envelope, thread, header_id);
        let detail = match (&dsn.status, &dsn.diagnostic) {
            (Some(s), Some(d)) => format!("{s} {d}"),
            (Some(s), None) => s.clone(),
            (None, Some(d)) => d.clone(),
            (None, None) => "bounce without a delivery report".to_owned(),
        };
        item.action = InboundAction::DeliveryStatus {
            notification,
            failed: dsn.is_failure() || dsn.action.is_empty(),
            detail: detail
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect(),
        };
        self.committer.commit(item).await?;
        Ok(Outcome::DeliveryStatus { notification })
    }
}

fn header_addresses(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Address(a) => a
            .iter()
            .filter_map(|x| x.address().map(str::to_owned))
            .collect(),
        HeaderValue::Text(t) => vec![t.trim().to_owned()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

fn first_address(a: Option<&HeaderAddress<'_>>) -> Option<Address> {
    a?.first()?.address().and_then(|s| Address::parse(s).ok())
}
