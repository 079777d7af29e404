//! The one inbound pipeline: raw bytes in, an [`Outcome`] out, the same for every door.
//!
//! Each step is a function named for what it decides, returning early with its outcome:
//! [`read`](read) the bytes (parse and classify, off the async workers) → [`report`] mail that
//! is not a reply (auto-replies, loops, delivery reports) → the [`target`] (reply token in the
//! recipient address or the message's own recipient headers, then a Message-ID it answers) →
//! a duplicate of what is filed already → the [`checks`]: the sender is the participant, the
//! sender authenticates (SPF, DKIM, DMARC; see [`super::auth`]), the conversation takes email
//! replies, something new was written → [`file`](Pipeline::file) (sealed, committed, the
//! others notified).
//!
//! Whatever cannot be filed goes through one rule, [`crate::domain::fate`]: refused while the
//! SMTP transaction is open (the sender's server tells them), held (sealed with its reason for
//! a person to release or reject, the participant told when that is safe), or — only for mail
//! no reply address of ours names, over IMAP — ignored with its reason. Nothing acknowledged
//! is dropped.
//!
//! The outcome is a value; the SMTP door turns it into a reply code, the IMAP door into a move.
//! Each outcome is logged once, with ids and reasons only: never content, never a token.

mod checks;
mod outcome;
mod read;
mod report;
mod target;

use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::auth::{Checker, Peer, Verdict};
use super::heavy::{Heavy, Panicked};
use crate::crypto::Keyring;
use crate::crypto::token::verify_notification_message_id;
use crate::domain::fate::{Fate, Unfiled, fate};
use crate::domain::mail::legacy_notification_of;
use crate::domain::{
    HoldReason, LedgerOutcome, MessageId, NoticeReason, NotificationId, ParticipantId, ThreadId,
    Via,
};
use crate::store::{
    Answers, Committed, HeldEnvelope, Inbound, InboundAction, Notice, Release, SealedHeld, Store,
    StoreError, TokenTarget,
};
use read::Parsed;

pub use outcome::Outcome;
pub use read::{MAX_BOUNDARY_LINES, MAX_HEADERS, MAX_MULTIPARTS, within_caps};
pub use target::{Recipient, RecipientError};

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
    pub door: Via,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
    /// The SMTP client, for SPF (the SMTP door only).
    pub peer: Option<Peer>,
}

impl Envelope {
    fn held(&self) -> HeldEnvelope {
        HeldEnvelope {
            mail_from: self.mail_from.clone(),
            null_sender: self.null_sender,
            rcpt_to: self.rcpt_to.clone(),
            imap: self.imap,
        }
    }

    /// The envelope a held message came with, for running it through the pipeline again.
    pub fn from_held(held: &HeldEnvelope, door: Via) -> Envelope {
        Envelope {
            mail_from: held.mail_from.clone(),
            null_sender: held.null_sender,
            rcpt_to: held.rcpt_to.clone(),
            verified: Vec::new(),
            door,
            imap: held.imap,
            peer: None,
        }
    }
}

/// A failure that means "try again later" (SMTP 451, IMAP: leave the message in place).
#[derive(Debug, thiserror::Error)]
pub enum Temporary {
    #[error("temporary failure: {0}")]
    Store(#[from] StoreError),
    /// DNS did not answer the sender authentication checks: never taken as a pass.
    #[error("temporary failure: sender authentication could not be completed (DNS)")]
    Auth,
    /// It would be held, and the held queue's quota for where it came from is full: the
    /// sender's server keeps it and tries again later (SMTP 452).
    #[error("temporary failure: too much mail from this source is waiting for review ({})", .0.as_str())]
    HeldFull(crate::domain::held::Quota),
}

/// Why a held message could not be released.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Temporary(#[from] Temporary),
    #[error("handling the message still fails (a defect; see the panic's location in the log)")]
    StillFailing,
    #[error("held message {0:016x} is not waiting for a decision")]
    Decided(i64),
}

/// How a step stopped the pipeline without an outcome.
enum Stop {
    Temporary(StoreError),
    /// Sender authentication needs DNS answers it did not get.
    AuthRetry,
    /// The message would be held, and a quota of the held queue is full.
    HeldFull(crate::domain::held::Quota),
    Panicked,
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Temporary(e)
    }
}

impl From<Panicked> for Stop {
    fn from(_: Panicked) -> Stop {
        Stop::Panicked
    }
}

/// One message going through the pipeline.
struct Incoming<'a> {
    envelope: &'a Envelope,
    raw: Arc<Vec<u8>>,
    /// Its inbound ledger id (and, if held, its held id).
    id: i64,
    /// Set when a person releases a held message.
    release: Option<&'a Release>,
    /// The domain of its `From:`, once parsed (for the held queue's quotas).
    from_domain: std::sync::OnceLock<String>,
}

/// A step's result: the value the next step needs, or the outcome that settles the message.
type Step<T> = Result<ControlFlow<Outcome, T>, Stop>;

/// Takes a step: its value, or returns the outcome it settled on.
macro_rules! step {
    ($e:expr) => {
        match $e? {
            ControlFlow::Continue(v) => v,
            ControlFlow::Break(outcome) => return Ok(outcome),
        }
    };
}

/// The pipeline, shared by every session.
#[derive(Clone)]
pub struct Pipeline {
    store: Store,
    keyring: Arc<Keyring>,
    heavy: Heavy,
    reply_domain: String,
    hostname: String,
    ttl_days: u32,
    outbox: Arc<Notify>,
    /// Configured text every notification carries (organisation, notice), recognised in
    /// replies like the messages themselves.
    boilerplate: Vec<String>,
    auth: Arc<Checker>,
    /// Content-free notices one person may get an hour (`policy.notices_per_hour`).
    notices_per_hour: u32,
    /// The held queue's quotas (`[held]`).
    held_limits: crate::domain::held::Limits,
}

impl Pipeline {
    /// The configured text Sealpost's notifications carry besides the messages.
    pub fn with_boilerplate(mut self, texts: Vec<String>) -> Pipeline {
        self.boilerplate = texts;
        self
    }

    /// The held queue's quotas.
    pub fn with_held_limits(mut self, limits: crate::domain::held::Limits) -> Pipeline {
        self.held_limits = limits;
        self
    }

    /// At most `n` content-free notices to one person an hour.
    pub fn with_notice_limit(mut self, n: u32) -> Pipeline {
        self.notices_per_hour = n;
        self
    }

    pub fn new(
        store: Store,
        reply_domain: &str,
        hostname: &str,
        ttl_days: u32,
        outbox: Arc<Notify>,
        auth: Arc<Checker>,
    ) -> Pipeline {
        Pipeline {
            keyring: store.shared_keyring(),
            store,
            heavy: Heavy::for_this_machine(),
            reply_domain: reply_domain.to_ascii_lowercase(),
            hostname: hostname.to_ascii_lowercase(),
            ttl_days,
            outbox,
            boilerplate: Vec::new(),
            auth,
            notices_per_hour: crate::domain::notice::DEFAULT_PER_HOUR,
            held_limits: crate::domain::held::Limits::default(),
        }
    }

    /// Runs a whole message through the pipeline. `Err` means a temporary failure: the door
    /// must ask for a retry (SMTP 451) and must not treat the message as handled.
    ///
    /// A panic anywhere in handling this message is caught here: the message is held (sealed,
    /// for review), the door answers as for any held message, and nothing else is affected.
    pub async fn process(&self, envelope: &Envelope, raw: Vec<u8>) -> Result<Outcome, Temporary> {
        let raw = Arc::new(raw);
        let id = MessageId::random().0;
        let incoming = Incoming {
            envelope,
            raw: raw.clone(),
            id,
            release: None,
            from_domain: std::sync::OnceLock::new(),
        };
        let decided = AssertUnwindSafe(self.decide(&incoming))
            .catch_unwind()
            .await;
        let outcome = match decided {
            Ok(Ok(outcome)) => outcome,
            // The database is busy or away: the sender tries again later.
            Ok(Err(Stop::Temporary(e))) if e.is_transient() => return Err(Temporary::Store(e)),
            Ok(Err(Stop::AuthRetry)) => {
                info!(
                    door = envelope.door.as_str(),
                    "sender authentication incomplete (DNS); asking the sender to retry"
                );
                return Err(Temporary::Auth);
            }
            Ok(Err(Stop::HeldFull(quota))) => {
                info!(
                    door = envelope.door.as_str(),
                    quota = quota.as_str(),
                    "held queue quota full; asking the sender to retry later"
                );
                crate::metrics::count(
                    &crate::metrics::metrics().held_refused,
                    [("quota", quota.as_str())],
                );
                return Err(Temporary::HeldFull(quota));
            }
            // Anything else would fail the same way on every retry (stored data that does not
            // open, a defect): the message is held, not bounced back and forth for days.
            failed => {
                let cause = match &failed {
                    Ok(Err(Stop::Temporary(e))) => {
                        warn!(class = ?e.class(), error = %e, "the store refused this message for good");
                        "store"
                    }
                    _ => "panic",
                };
                warn!(
                    door = envelope.door.as_str(),
                    held_id = format!("{id:016x}"),
                    cause,
                    "handling a message failed; it is held for review"
                );
                let item = self.ledger(&incoming, None, None);
                self.unfiled(&incoming, item, Unfiled::ProcessingFailed, None, None)
                    .await
                    .map_err(|e| match e {
                        Stop::Temporary(e) => Temporary::Store(e),
                        Stop::AuthRetry => Temporary::Auth,
                        Stop::HeldFull(q) => Temporary::HeldFull(q),
                        // Sealing and committing bytes do not look at what they say; a panic
                        // here is not about this message.
                        Stop::Panicked => Temporary::Store(StoreError::Unavailable(
                            "cannot hold a message: sealing it failed".into(),
                        )),
                    })?
            }
        };
        outcome::log_outcome(envelope.door, &outcome);
        if matches!(outcome, Outcome::Filed { .. } | Outcome::Held { .. }) {
            // A filing queues notifications; a hold may queue a notice.
            self.outbox.notify_one();
        }
        Ok(outcome)
    }

    /// Runs a held message through the pipeline again, as a person decided: the rules that
    /// held it (its sender did not authenticate; only a Message-ID linked it; nothing new
    /// seemed written; the conversation takes no email; its reply address had expired) no
    /// longer hold it, and the filed message records who released it and what authentication
    /// had found (`held_auth`). Filing and marking the held message released are one commit.
    /// Every other check still applies (the `From:` address must be the participant's, the
    /// participant still in the conversation, the conversation open): a message that fails
    /// one comes back as [`Outcome::Refused`] and stays held.
    pub async fn release(
        &self,
        held: i64,
        envelope: &Envelope,
        raw: Vec<u8>,
        by: &str,
        held_auth: Option<String>,
    ) -> Result<Outcome, ReleaseError> {
        let release = Release {
            held,
            by: by.to_owned(),
            held_auth,
        };
        let incoming = Incoming {
            envelope,
            raw: Arc::new(raw),
            id: MessageId::random().0,
            release: Some(&release),
            from_domain: std::sync::OnceLock::new(),
        };
        let decided = AssertUnwindSafe(self.decide(&incoming))
            .catch_unwind()
            .await;
        let outcome = match decided {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(Stop::Temporary(StoreError::HeldDecided(id)))) => {
                return Err(ReleaseError::Decided(id));
            }
            Ok(Err(Stop::Temporary(e))) => return Err(Temporary::Store(e).into()),
            Ok(Err(Stop::AuthRetry)) => return Err(Temporary::Auth.into()),
            Ok(Err(Stop::HeldFull(q))) => return Err(Temporary::HeldFull(q).into()),
            Ok(Err(Stop::Panicked)) | Err(_) => return Err(ReleaseError::StillFailing),
        };
        outcome::log_outcome(envelope.door, &outcome);
        if matches!(outcome, Outcome::Filed { .. }) {
            self.outbox.notify_one();
        }
        Ok(outcome)
    }

    /// A ledger row for `m`, to be given its action.
    fn ledger(
        &self,
        m: &Incoming<'_>,
        thread: Option<ThreadId>,
        header: Option<String>,
    ) -> Inbound {
        self.ledger_for(m.envelope, m.id, thread, header)
    }

    fn ledger_for(
        &self,
        envelope: &Envelope,
        id: i64,
        thread: Option<ThreadId>,
        header_id: Option<String>,
    ) -> Inbound {
        Inbound {
            id,
            door: envelope.door,
            received_at: self.store.clock().now(),
            thread,
            header_message_id: header_id,
            imap: envelope.imap,
            action: InboundAction::Record {
                outcome: LedgerOutcome::Ignored,
                reason: String::new(),
                notice: None,
            },
        }
    }

    /// Records an outcome that files nothing.
    async fn record(
        &self,
        mut item: Inbound,
        outcome: LedgerOutcome,
        reason: &'static str,
        notice: Option<Notice>,
    ) -> Result<Committed, Stop> {
        item.action = InboundAction::Record {
            outcome,
            reason: reason.to_owned(),
            notice,
        };
        Ok(self.store.commit_inbound(item).await?)
    }

    /// Records an outcome that files nothing and settles on it.
    async fn settle<T>(
        &self,
        item: Inbound,
        outcome: LedgerOutcome,
        reason: &'static str,
    ) -> Step<T> {
        let thread = item.thread;
        let committed = self.record(item, outcome, reason, None).await?;
        Ok(ControlFlow::Break(match (committed, thread) {
            (Committed::Duplicate, Some(thread)) => Outcome::Duplicate { thread },
            _ => Outcome::Ignored { reason },
        }))
    }

    /// What becomes of a message that cannot be filed, by the one rule
    /// ([`crate::domain::fate`]): refused (SMTP only), held (with the notice the rule gives
    /// its participant, when known), or ignored. When a person is releasing it, it stays held
    /// and nothing more is recorded.
    async fn unfiled(
        &self,
        m: &Incoming<'_>,
        item: Inbound,
        why: Unfiled,
        participant: Option<ParticipantId>,
        verdict: Option<&Verdict>,
    ) -> Result<Outcome, Stop> {
        if m.release.is_some() {
            return Ok(Outcome::Refused {
                reason: why.reason(),
                refusal: None,
            });
        }
        let thread = item.thread;
        let duplicate = |c: &Committed| match (c, thread) {
            (Committed::Duplicate, Some(thread)) => Some(Outcome::Duplicate { thread }),
            _ => None,
        };
        match fate(why, m.envelope.door, m.envelope.rcpt_to.len()) {
            Fate::Refuse { reason, refusal } => {
                let c = self
                    .record(item, LedgerOutcome::Rejected, reason, None)
                    .await?;
                Ok(duplicate(&c).unwrap_or(Outcome::Refused {
                    reason,
                    refusal: Some(refusal),
                }))
            }
            Fate::Ignore { reason } => {
                let c = self
                    .record(item, LedgerOutcome::Ignored, reason, None)
                    .await?;
                Ok(duplicate(&c).unwrap_or(Outcome::Ignored { reason }))
            }
            Fate::Hold { reason, notice } => {
                self.hold(item, m, reason, participant, notice, verdict)
                    .await
            }
        }
    }

    /// Puts the message in the held queue, sealed under a key of its own; its participant,
    /// when known, gets `notice` (within the notice limit).
    async fn hold(
        &self,
        mut item: Inbound,
        m: &Incoming<'_>,
        reason: HoldReason,
        participant: Option<ParticipantId>,
        notice: Option<NoticeReason>,
        verdict: Option<&Verdict>,
    ) -> Result<Outcome, Stop> {
        let (keyring, raw, held_envelope, id) = (
            self.keyring.clone(),
            m.raw.clone(),
            m.envelope.held(),
            item.id,
        );
        let auth = verdict.map(Verdict::summary);
        // Where it came from, for the quotas: the client (not a trusted relay's address, which
        // is everyone's) and the sender's domain (From:, else the envelope's).
        let client = m
            .envelope
            .peer
            .as_ref()
            .filter(|p| !self.auth.is_trusted_relay(p.ip))
            .map(|p| p.ip.to_string());
        let sender_domain = m.from_domain.get().cloned().or_else(|| {
            m.envelope
                .mail_from
                .as_deref()
                .and_then(|s| s.rsplit_once('@'))
                .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        });
        let held = self
            .heavy
            .run_for(raw.len(), move || {
                SealedHeld::seal(&keyring, id, &held_envelope, &raw, reason, participant)
                    .with_auth(auth)
                    .from_source(client, sender_domain)
            })
            .await?;
        item.action = InboundAction::Hold {
            limits: self.held_limits,
            held,
            notice: participant.zip(notice).map(|(participant, reason)| Notice {
                participant,
                reason,
                per_hour: self.notices_per_hour,
            }),
        };
        let thread = item.thread;
        match (self.store.commit_inbound(item).await?, thread) {
            (Committed::Held { id }, _) => Ok(Outcome::Held { id, reason }),
            (Committed::HeldFull(quota), _) => Err(Stop::HeldFull(quota)),
            (Committed::Duplicate, Some(thread)) => Ok(Outcome::Duplicate { thread }),
            (other, _) => Err(Stop::Temporary(StoreError::Corrupt(format!(
                "holding a message committed {other:?}"
            )))),
        }
    }

    /// The pipeline's steps in order; each either hands its result to the next or settles
    /// the outcome (`ControlFlow::Break`).
    async fn decide(&self, m: &Incoming<'_>) -> Result<Outcome, Stop> {
        let parsed = step!(self.parse(m).await);
        step!(self.classify(m, &parsed).await);
        let (target, link) = step!(self.target_of(m, &parsed).await);
        let item = self.ledger(m, Some(target.thread), Some(parsed.header_id.clone()));
        step!(self.not_a_duplicate(m, &item).await);
        step!(
            self.written_by_participant(m, &parsed, &target, &item)
                .await
        );
        let verdict = step!(self.authenticate(m, &target, link, &item).await);
        step!(self.takes_email(m, &target, &item).await);
        let text = step!(
            self.reply_text(m, &parsed, &target, verdict.as_ref(), &item)
                .await
        );
        let auth = match (m.release, &verdict) {
            (Some(r), _) => format!(
                "released by {}; held with: {}",
                r.by,
                r.held_auth
                    .as_deref()
                    .unwrap_or("no authentication results")
            ),
            (None, Some(v)) => v.summary(),
            (None, None) => String::new(),
        };
        let answers = self
            .answered(&parsed)
            .map_or(Answers::Nothing, Answers::Notification);
        self.file(item, m, &target, &text, &auth, answers).await
    }

    /// The notification a reply answers: the first of ours its In-Reply-To/References name.
    fn answered(&self, parsed: &Parsed) -> Option<NotificationId> {
        parsed.references.iter().find_map(|id| {
            verify_notification_message_id(id, &self.keyring, &self.reply_domain)
                .map(NotificationId)
                .or_else(|| legacy_notification_of(id))
        })
    }

    /// Seals the reply and its raw message and commits them; the other participants'
    /// notifications are queued in the same transaction. What changed meanwhile (the thread
    /// closed, the participant removed) is found inside the commit and settled by the rule.
    async fn file(
        &self,
        item: Inbound,
        m: &Incoming<'_>,
        target: &TokenTarget,
        text: &str,
        auth: &str,
        answers: Answers,
    ) -> Result<Outcome, Stop> {
        let thread = target.thread;
        let participant = target.participant.id;
        let sealer = self.store.sealer(thread).await?;
        let (raw, release) = (m.raw.clone(), m.release);
        let (ledger_id, size, via) = (item.id, raw.len(), m.envelope.door);
        let owned = text.to_owned();
        let (mut message, raw) = self
            .heavy
            .run_for(size, move || {
                (
                    sealer.message(participant, &owned, via),
                    sealer.inbound_raw(ledger_id, &raw),
                )
            })
            .await?;
        message.auth = (!auth.is_empty()).then(|| auth.to_owned());
        message.answers = answers;
        let mut filing = item.clone();
        filing.action = InboundAction::File {
            message,
            raw,
            release: release.cloned(),
        };
        // A Message-ID filed before is recognised inside the commit (the only race-free place).
        let why = match self.store.commit_inbound(filing).await {
            Ok(Committed::Filed(posted)) => {
                return Ok(Outcome::Filed {
                    thread,
                    message: posted.message_id,
                });
            }
            Ok(_) => return Ok(Outcome::Duplicate { thread }),
            Err(StoreError::ThreadClosed(_)) => Unfiled::ThreadClosed,
            Err(StoreError::Revoked(_)) => Unfiled::ParticipantRemoved,
            Err(e) => return Err(e.into()),
        };
        self.unfiled(m, item, why, Some(participant), None).await
    }
}

#[cfg(test)]
mod tests;
