//! The one inbound pipeline: raw bytes in, an [`Outcome`] out, the same for every door.
//!
//! Each step is a function named for what it decides, returning early with its outcome:
//! [`read`](Pipeline::read) (parse and classify, off the async workers) → the reply token
//! ([`find_target`](Pipeline::find_target): recipient address, the message's own recipient
//! headers, then a Message-ID it answers) → [`check_sender`] → the thread's mode and state →
//! [`authenticate`](Pipeline::authenticate) the sender (SPF, DKIM, DMARC; see [`super::auth`])
//! → [`extract`](Pipeline::extract) the reply text → [`file`](Pipeline::file) (sealed,
//! committed, the others notified). A message that cannot be filed safely is **held**: sealed
//! in the held queue with its reason, never lost — when handling it panicked, when its sender
//! did not authenticate, when only a Message-ID linked it to a thread and its sender did not
//! authenticate, or when nothing new was written.
//!
//! The outcome is a value; the SMTP door turns it into a reply code, the IMAP door into a move.
//! Each outcome is logged once, with ids and reasons only: never content, never a token.

use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use mail_parser::{Address as HeaderAddress, HeaderValue};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use tracing::{info, warn};

use super::auth::{Checker, Decision, Peer, Verdict};
use super::classify::{Class, Dsn, classify, referenced_ids};
use super::heavy::{Heavy, Panicked};
use super::mime::{self, Unparsable};
use super::reply_text;
use crate::crypto::token::{
    token_in_address, verify_bounce_address, verify_notification_message_id,
};
use crate::crypto::{Keyring, ReplyToken, TokenError};
use crate::domain::mail::{REPLY_MARKER, legacy_notification_of};
use crate::domain::{
    Address, AuthPolicy, HoldReason, LedgerOutcome, MessageId, Mode, NoticeReason, NotificationId,
    ParticipantId, ThreadId, Via,
};
use crate::store::{
    Answers, Committed, HeldEnvelope, Inbound, InboundAction, Release, SealedHeld, Store,
    StoreError, TokenTarget,
};

/// Most Message-IDs of a reply's References looked up in the database: a header can list
/// thousands, and only the latest few can be ours.
const MAX_REFERENCE_LOOKUPS: usize = 10;

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
    /// Kept sealed in the held queue for a person to release or reject.
    Held {
        id: i64,
        reason: HoldReason,
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

/// A failure that means "try again later" (SMTP 451, IMAP: leave the message in place).
#[derive(Debug, thiserror::Error)]
pub enum Temporary {
    #[error("temporary failure: {0}")]
    Store(#[from] StoreError),
    /// DNS did not answer the sender authentication checks: never taken as a pass.
    #[error("temporary failure: sender authentication could not be completed (DNS)")]
    Auth,
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

/// Why and for whom a message is held.
struct Hold<'v> {
    reason: HoldReason,
    /// The participant it names, when known (for staff's view of the thread).
    participant: Option<ParticipantId>,
    /// The content-free notice the participant gets, if any.
    notice: Option<NoticeReason>,
    /// What sender authentication found, when it ran.
    verdict: Option<&'v Verdict>,
}

impl<'v> Hold<'v> {
    fn because(reason: HoldReason) -> Hold<'v> {
        Hold {
            reason,
            participant: None,
            notice: None,
            verdict: None,
        }
    }

    fn of(self, participant: ParticipantId) -> Hold<'v> {
        Hold {
            participant: Some(participant),
            ..self
        }
    }

    fn notice(self, notice: NoticeReason) -> Hold<'v> {
        Hold {
            notice: Some(notice),
            ..self
        }
    }

    fn with(self, verdict: Option<&'v Verdict>) -> Hold<'v> {
        Hold { verdict, ..self }
    }
}

/// How a reply reached its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// A verified reply token (the recipient address or the message's own recipient headers).
    Token,
    /// Only a Message-ID of one of our notifications, in In-Reply-To or References.
    Reference,
}

/// What the pipeline reads from the raw bytes before it asks the database anything. Owned, so
/// it can be made on the blocking pool.
struct Parsed {
    /// The Message-ID header, or a digest of the message when it has none: the dedupe key.
    header_id: String,
    class: Class,
    /// The first address in `From:`, if it is one Sealpost accepts.
    from: Option<Address>,
    /// Mailboxes named by every `From:` field together (one, for a reply a person wrote).
    from_mailboxes: usize,
    /// Reply tokens in the recipient headers (Delivered-To, X-Original-To, To, Cc).
    header_tokens: Vec<String>,
    /// Where the final MTA said it delivered (Delivered-To, X-Original-To): for the IMAP door,
    /// the only record of the envelope recipient.
    delivered_to: Vec<String>,
    /// In-Reply-To and References, most recent first.
    references: Vec<String>,
    /// The text body as extraction wants it (plain, unflowed, or converted from HTML).
    body: Option<String>,
    /// The reply text, when Sealpost's marker line settles where our notification starts.
    marked: Option<String>,
}

impl Parsed {
    /// Parses and classifies; `None` for bytes that are not a message. Linear in the input.
    fn read(raw: &[u8], null_sender: bool, reply_domain: &str) -> Read {
        if let Err(why) = within_caps(raw) {
            return Read::TooComplex(why);
        }
        match Parsed::parse(raw, null_sender, reply_domain) {
            Ok(p) => Read::Parsed(Box::new(p)),
            Err(Unparsable::NotAMessage) => Read::Malformed,
            Err(Unparsable::ParserFailed) => Read::ParserFailed,
        }
    }

    fn parse(raw: &[u8], null_sender: bool, reply_domain: &str) -> Result<Parsed, Unparsable> {
        // A defect unit tests can provoke, to show that a panic holds only its own message.
        #[cfg(test)]
        if raw
            .windows(tests::PANIC_TRIGGER.len())
            .any(|w| w == tests::PANIC_TRIGGER)
        {
            panic!("provoked by a test");
        }
        let message = mime::parse(raw)?;
        let header_id = message
            .message_id()
            .map(|m| m.chars().take(998).collect())
            .unwrap_or_else(|| {
                format!(
                    "sha256:{}",
                    data_encoding::HEXLOWER.encode(&Sha256::digest(raw))
                )
            });
        let mut header_tokens = Vec::new();
        let mut delivered_to = Vec::new();
        for name in ["Delivered-To", "X-Original-To", "To", "Cc"] {
            for value in message.header_values(name) {
                for addr in header_addresses(value) {
                    if let Some(t) = token_in_address(&addr, reply_domain) {
                        header_tokens.push(t.to_owned());
                    }
                    if matches!(name, "Delivered-To" | "X-Original-To") {
                        delivered_to.push(addr);
                    }
                }
            }
        }
        let body = reply_text::body_of(&message);
        let marked = body
            .as_deref()
            .filter(|b| b.contains(REPLY_MARKER))
            .map(|b| reply_text::text_of(b, &reply_text::Known::default()));
        Ok(Parsed {
            header_id,
            class: classify(&message, null_sender),
            from: first_address(message.from()),
            from_mailboxes: message
                .header_values("From")
                .map(|v| match v {
                    HeaderValue::Address(a) => a.iter().count().max(1),
                    _ => 1,
                })
                .sum(),
            header_tokens,
            delivered_to,
            references: referenced_ids(&message),
            body,
            marked,
        })
    }
}

/// What reading the bytes gave.
enum Read {
    Parsed(Box<Parsed>),
    /// Not a message at all.
    Malformed,
    /// The MIME parser failed on it (a defect in the parser, contained).
    ParserFailed,
    /// Over one of the structural caps (see [`within_caps`]).
    TooComplex(&'static str),
}

/// Header fields in the message's own header block, at most.
pub const MAX_HEADERS: usize = 1000;
/// Lines that could be MIME boundaries (`--` and a token), at most: parts and their ends.
pub const MAX_BOUNDARY_LINES: usize = 10_000;
/// `multipart/` content types, at most: bounds how deep parts nest.
pub const MAX_MULTIPARTS: usize = 100;

/// Explicit caps on a message's structure, checked in one pass over the bytes before anything
/// parses them. Parsing is linear anyway; the caps keep what a single message can make the
/// parser build (header lists, part trees, nesting) small whatever the size limit is set to.
/// No reply a person writes comes near them.
pub fn within_caps(raw: &[u8]) -> Result<(), &'static str> {
    let mut headers = 0;
    let mut in_head = true;
    let mut boundaries = 0;
    let mut multiparts = 0;
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_head {
            if line.is_empty() {
                in_head = false;
            } else if !line.starts_with(b" ") && !line.starts_with(b"\t") {
                headers += 1;
                if headers > MAX_HEADERS {
                    return Err("too-many-headers");
                }
            }
        }
        if line.len() > 2
            && line.starts_with(b"--")
            && line[2..]
                .first()
                .is_some_and(|b| b.is_ascii_graphic() && *b != b'-')
        {
            boundaries += 1;
            if boundaries > MAX_BOUNDARY_LINES {
                return Err("too-many-parts");
            }
        }
        if line.len() >= 22 && line[..13].eq_ignore_ascii_case(b"content-type:") {
            let value = line[13..].trim_ascii_start();
            if value.len() >= 10 && value[..10].eq_ignore_ascii_case(b"multipart/") {
                multiparts += 1;
                if multiparts > MAX_MULTIPARTS {
                    return Err("too-deeply-nested");
                }
            }
        }
    }
    Ok(())
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
}

impl Pipeline {
    /// The configured text Sealpost's notifications carry besides the messages.
    pub fn with_boilerplate(mut self, texts: Vec<String>) -> Pipeline {
        self.boilerplate = texts;
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
        }
    }

    /// Verifies a reply token (keyring only, constant time), then looks its participant up.
    async fn target(&self, token: &str) -> Result<TokenTarget, RecipientError> {
        let verified = ReplyToken::verify(
            token,
            &self.keyring,
            self.store.clock().now(),
            self.ttl_days,
        )
        .map_err(|e: TokenError| RecipientError::Token(e.reason()))?;
        let target = self
            .store
            .token_target(&verified.claims)
            .await
            .map_err(|e| {
                warn!(error = %e, "cannot look up a token's participant");
                RecipientError::Unavailable
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

    /// Runs a whole message through the pipeline. `Err` means a storage failure: the door
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
                let mut item = self.ledger(envelope, id, None, None);
                self.hold(
                    &mut item,
                    envelope,
                    &raw,
                    Hold::because(HoldReason::ProcessingFailed),
                )
                .await
                .map_err(|e| match e {
                    Stop::Temporary(e) => Temporary::Store(e),
                    Stop::AuthRetry => Temporary::Auth,
                    // Sealing and committing bytes do not look at what they say; a panic
                    // here is not about this message.
                    Stop::Panicked => Temporary::Store(StoreError::Unavailable(
                        "cannot hold a message: sealing it failed".into(),
                    )),
                })?
            }
        };
        log_outcome(envelope.door, &outcome);
        if matches!(outcome, Outcome::Filed { .. }) {
            self.outbox.notify_one();
        }
        Ok(outcome)
    }

    /// Runs a held message through the pipeline again, as a person decided: the rules that
    /// held it (its sender did not authenticate; only a Message-ID linked it; nothing new
    /// seemed written) no longer hold it, and the filed message records who released it and
    /// what authentication had found (`held_auth`). Filing and marking the held message
    /// released are one commit. Every other check still applies (the `From:` address must be
    /// the participant's, the thread must be open).
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
            Ok(Err(Stop::Panicked)) | Err(_) => return Err(ReleaseError::StillFailing),
        };
        log_outcome(envelope.door, &outcome);
        if matches!(outcome, Outcome::Filed { .. }) {
            self.outbox.notify_one();
        }
        Ok(outcome)
    }

    fn ledger(
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
        notice: Option<(ParticipantId, NoticeReason)>,
    ) -> Result<(), Stop> {
        item.action = InboundAction::Record {
            outcome,
            reason: reason.to_owned(),
            notice,
        };
        self.store.commit_inbound(item).await?;
        Ok(())
    }

    /// Puts the message in the held queue, sealed under a key of its own.
    async fn hold(
        &self,
        item: &mut Inbound,
        envelope: &Envelope,
        raw: &Arc<Vec<u8>>,
        hold: Hold<'_>,
    ) -> Result<Outcome, Stop> {
        let Hold {
            reason,
            participant,
            notice,
            verdict,
        } = hold;
        let (keyring, raw, held_envelope, id) =
            (self.keyring.clone(), raw.clone(), envelope.held(), item.id);
        let auth = verdict.map(Verdict::summary);
        let held = self
            .heavy
            .run_for(raw.len(), move || {
                SealedHeld::seal(&keyring, id, &held_envelope, &raw, reason, participant)
                    .with_auth(auth)
            })
            .await?;
        item.action = InboundAction::Hold {
            held,
            notice: participant.zip(notice),
        };
        match self.store.commit_inbound(item.clone()).await? {
            Committed::Held { id } => Ok(Outcome::Held { id, reason }),
            other => Err(Stop::Temporary(StoreError::Corrupt(format!(
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
        let mut item = self.ledger(
            m.envelope,
            m.id,
            Some(target.thread),
            Some(parsed.header_id.clone()),
        );
        step!(
            self.accepts_email(m, &parsed, &target, link, &mut item)
                .await
        );
        let verdict = step!(self.authenticate(m, &target, link, &mut item).await);
        let text = step!(
            self.reply_text(m, &parsed, &target, &verdict, &mut item)
                .await
        );
        let auth = match (m.release, verdict) {
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
        self.file(item, m, target.participant.id, &text, &auth, answers)
            .await
    }

    /// Parses the bytes (off the async workers when they are many); a message over the
    /// structural caps is held unparsed, unless a person is releasing it.
    async fn parse(&self, m: &Incoming<'_>) -> Step<Box<Parsed>> {
        let parsed = match self.read(m.envelope, &m.raw).await? {
            Read::Parsed(p) => p,
            Read::Malformed => {
                let item = self.ledger(m.envelope, m.id, None, None);
                return self
                    .settle(item, LedgerOutcome::Rejected, "malformed", None)
                    .await;
            }
            Read::ParserFailed => return Err(Stop::Panicked),
            Read::TooComplex(why) if m.release.is_none() => {
                info!(
                    door = m.envelope.door.as_str(),
                    cap = why,
                    "message over a structural cap"
                );
                let mut item = self.ledger(m.envelope, m.id, None, None);
                let held = self
                    .hold(
                        &mut item,
                        m.envelope,
                        &m.raw,
                        Hold::because(HoldReason::TooComplex),
                    )
                    .await?;
                return Ok(ControlFlow::Break(held));
            }
            // A person decided to file it anyway: parse it, caps or not (its size is bounded).
            Read::TooComplex(_) => {
                let (raw, null_sender, domain) = (
                    m.raw.clone(),
                    m.envelope.null_sender,
                    self.reply_domain.clone(),
                );
                let parsed = self
                    .heavy
                    .run_for(raw.len(), move || Parsed::parse(&raw, null_sender, &domain))
                    .await?;
                match parsed {
                    Ok(p) => Box::new(p),
                    Err(Unparsable::NotAMessage) => {
                        return Ok(ControlFlow::Break(Outcome::Rejected {
                            reason: "malformed",
                        }));
                    }
                    Err(Unparsable::ParserFailed) => return Err(Stop::Panicked),
                }
            }
        };
        Ok(ControlFlow::Continue(parsed))
    }

    /// Classification comes first: an auto-reply, a loop or a bounce is never filed, token or
    /// not.
    async fn classify(&self, m: &Incoming<'_>, parsed: &Parsed) -> Step<()> {
        let header_id = Some(parsed.header_id.clone());
        let item = || self.ledger(m.envelope, m.id, None, header_id.clone());
        match &parsed.class {
            Class::Loop => {
                self.settle(item(), LedgerOutcome::Ignored, "loop", None)
                    .await
            }
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

    /// The thread and participant the message answers, and how it says so; mail that names
    /// none is ignored (postmaster) or rejected.
    async fn target_of(&self, m: &Incoming<'_>, parsed: &Parsed) -> Step<(TokenTarget, Link)> {
        if let Some(found) = self.find_target(m.envelope, parsed).await? {
            return Ok(ControlFlow::Continue(found));
        }
        let postmaster = m.envelope.rcpt_to.iter().any(|r| {
            r.trim_matches(|c| c == '<' || c == '>')
                .split('@')
                .next()
                .is_some_and(|l| l.eq_ignore_ascii_case("postmaster"))
        });
        let item = self.ledger(m.envelope, m.id, None, Some(parsed.header_id.clone()));
        if postmaster {
            self.settle(item, LedgerOutcome::Ignored, "postmaster", None)
                .await
        } else {
            self.settle(item, LedgerOutcome::Rejected, "no-valid-token", None)
                .await
        }
    }

    /// Whether this thread takes this message by email: one author, whose `From:` address is
    /// the participant's; the thread in convenience mode and open.
    async fn accepts_email(
        &self,
        m: &Incoming<'_>,
        parsed: &Parsed,
        target: &TokenTarget,
        link: Link,
        item: &mut Inbound,
    ) -> Step<()> {
        // Checked first: with two authors, "the" From address depends on which one a reader
        // (ours, a DMARC checker, a mail client) takes.
        if parsed.from_mailboxes != 1 && m.release.is_none() {
            let hold = Hold::because(HoldReason::MultipleFrom).of(target.participant.id);
            let held = self.hold(item, m.envelope, &m.raw, hold).await?;
            return Ok(ControlFlow::Break(held));
        }
        if let Err(reason) = check_sender(m.envelope, parsed, target) {
            return self
                .settle(item.clone(), LedgerOutcome::Rejected, reason, None)
                .await;
        }
        // A content-free notice goes to the participant whose token the message carries. It
        // says only that the reply was not filed, so a forged sender learns nothing; a reply
        // linked by a Message-ID alone gets none (it proves nothing about who wrote it).
        let participant = target.participant.id;
        let notice_to = |why| (link == Link::Token).then_some((participant, why));
        // A recipient who has not consented to convenience mode (or withdrew it) is in a
        // secure thread as far as email goes.
        if target.mode == Mode::Secure || !target.by_email {
            let notice = notice_to(NoticeReason::SecureThread);
            return self
                .settle(
                    item.clone(),
                    LedgerOutcome::Rejected,
                    "secure-thread",
                    notice,
                )
                .await;
        }
        if target.closed {
            let notice = notice_to(NoticeReason::ThreadClosed);
            return self
                .settle(
                    item.clone(),
                    LedgerOutcome::Rejected,
                    "thread-closed",
                    notice,
                )
                .await;
        }
        Ok(ControlFlow::Continue(()))
    }

    /// Is the sender the participant? One mailbox in `From:`, and its domain vouching for the
    /// message as `auth.policy` requires; a reply linked only by a Message-ID must
    /// authenticate whatever the policy. A message that does not is held, and nobody is told:
    /// the token's owner may not be who wrote it. A DNS failure asks the sender to retry.
    /// Skipped when a person releases a held message (they decided; what authentication found
    /// then is recorded with the filed message). The verdict is `None` only then.
    async fn authenticate(
        &self,
        m: &Incoming<'_>,
        target: &TokenTarget,
        link: Link,
        item: &mut Inbound,
    ) -> Step<Option<Verdict>> {
        if m.release.is_some() {
            return Ok(ControlFlow::Continue(None));
        }
        let verdict = self
            .auth
            .verdict(
                &m.raw,
                m.envelope.peer.as_ref(),
                m.envelope.mail_from.as_deref(),
            )
            .await;
        let domain = target.participant.address.domain();
        let decision = verdict.decide(self.auth.policy(), domain);
        // A Message-ID is not a secret: a reply linked by one alone needs a sender proven to
        // be the participant, whatever the policy.
        let proven = verdict.decide(AuthPolicy::RequireDmarcPass, domain) == Decision::File;
        let reason = match (decision, link) {
            (Decision::Retry, _) => return Err(Stop::AuthRetry),
            (Decision::File, Link::Token) => return Ok(ControlFlow::Continue(Some(verdict))),
            (Decision::File, Link::Reference) if proven => {
                return Ok(ControlFlow::Continue(Some(verdict)));
            }
            (_, Link::Reference) => HoldReason::LinkedByReferences,
            (Decision::Hold, Link::Token) => HoldReason::AuthFailed,
        };
        info!(
            door = m.envelope.door.as_str(),
            policy = self.auth.policy().as_str(),
            auth = %verdict,
            "sender not authenticated as the participant's domain"
        );
        let held = self
            .hold(
                item,
                m.envelope,
                &m.raw,
                Hold::because(reason)
                    .of(target.participant.id)
                    .with(Some(&verdict)),
            )
            .await?;
        Ok(ControlFlow::Break(held))
    }

    /// What the person wrote. Nothing new: held, and they get the content-free notice — or,
    /// when a person releases it, the message's whole text is filed.
    async fn reply_text(
        &self,
        m: &Incoming<'_>,
        parsed: &Parsed,
        target: &TokenTarget,
        verdict: &Option<Verdict>,
        item: &mut Inbound,
    ) -> Step<String> {
        let text = self.extract(target.thread, parsed).await?;
        if !text.trim().is_empty() {
            return Ok(ControlFlow::Continue(text));
        }
        match (m.release, parsed.body.as_deref()) {
            (Some(_), Some(body)) if !body.trim().is_empty() => {
                Ok(ControlFlow::Continue(body.trim().to_owned()))
            }
            (Some(_), _) => Ok(ControlFlow::Break(Outcome::Rejected {
                reason: "empty-reply",
            })),
            (None, _) => {
                let held = self
                    .hold(
                        item,
                        m.envelope,
                        &m.raw,
                        Hold::because(HoldReason::EmptyReply)
                            .of(target.participant.id)
                            .notice(NoticeReason::EmptyReply)
                            .with(verdict.as_ref()),
                    )
                    .await?;
                Ok(ControlFlow::Break(held))
            }
        }
    }

    /// Records an outcome that files nothing and settles on it.
    async fn settle<T>(
        &self,
        item: Inbound,
        outcome: LedgerOutcome,
        reason: &'static str,
        notice: Option<(ParticipantId, NoticeReason)>,
    ) -> Step<T> {
        self.record(item, outcome, reason, notice).await?;
        Ok(ControlFlow::Break(match outcome {
            LedgerOutcome::Ignored => Outcome::Ignored { reason },
            _ => Outcome::Rejected { reason },
        }))
    }

    /// Parses and classifies on the blocking pool.
    async fn read(&self, envelope: &Envelope, raw: &Arc<Vec<u8>>) -> Result<Read, Stop> {
        let (raw, null_sender, domain) =
            (raw.clone(), envelope.null_sender, self.reply_domain.clone());
        let size = raw.len();
        Ok(self
            .heavy
            .run_for(size, move || Parsed::read(&raw, null_sender, &domain))
            .await?)
    }

    /// The reply text. The marker line, when present, settled it while parsing; otherwise the
    /// words of what this person was sent are needed (and read): the latest messages and, when
    /// the reply answers an older notification, the messages that one carried.
    async fn extract(&self, thread: ThreadId, parsed: &Parsed) -> Result<String, Stop> {
        if let Some(text) = &parsed.marked {
            return Ok(text.clone());
        }
        let Some(body) = parsed.body.clone() else {
            return Ok(String::new());
        };
        let sent = self
            .store
            .sent_bodies(thread, self.answered(parsed), 11)
            .await?;
        let boilerplate = self.boilerplate.clone();
        Ok(self
            .heavy
            .run_for(body.len(), move || {
                let known = reply_text::Known::new(&sent).with_boilerplate(&boilerplate);
                reply_text::text_of(&body, &known)
            })
            .await?)
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
    /// notifications are queued in the same transaction.
    async fn file(
        &self,
        mut item: Inbound,
        m: &Incoming<'_>,
        participant: ParticipantId,
        text: &str,
        auth: &str,
        answers: Answers,
    ) -> Result<Outcome, Stop> {
        let thread = item.thread.expect("a filing has a thread");
        let sealer = self.store.sealer(thread).await?;
        let (raw, release) = (m.raw.clone(), m.release);
        let (ledger_id, size, via) = (item.id, raw.len(), m.envelope.door);
        let text = text.to_owned();
        let (mut message, raw) = self
            .heavy
            .run_for(size, move || {
                (
                    sealer.message(participant, &text, via),
                    sealer.inbound_raw(ledger_id, &raw),
                )
            })
            .await?;
        message.auth = (!auth.is_empty()).then(|| auth.to_owned());
        message.answers = answers;
        item.action = InboundAction::File {
            message,
            raw,
            release: release.cloned(),
        };
        // A Message-ID filed before is recognised inside the commit (the only race-free place).
        match self.store.commit_inbound(item).await {
            Ok(Committed::Filed(posted)) => Ok(Outcome::Filed {
                thread,
                message: posted.message_id,
            }),
            Ok(_) => Ok(Outcome::Duplicate { thread }),
            Err(StoreError::ThreadClosed(_)) => Ok(Outcome::Rejected {
                reason: "thread-closed",
            }),
            Err(StoreError::Revoked(_)) => Ok(Outcome::Rejected {
                reason: "participant-revoked",
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The verified target of the first reply token found — recipient addresses, then the
    /// message's own recipient headers — else the participant of a notification the message
    /// names in In-Reply-To/References.
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
            let item = self.ledger(envelope, id, None, header_id);
            self.record(item, LedgerOutcome::Ignored, "unmatched-bounce", None)
                .await?;
            return Ok(Outcome::Ignored {
                reason: "unmatched-bounce",
            });
        };
        let thread = self.store.notification_thread(notification).await?;
        let mut item = self.ledger(envelope, id, thread, header_id);
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

/// The sender must be the token's participant: a forwarded notification answered by someone
/// else is not filed, and nobody unverified is ever written to.
fn check_sender(
    envelope: &Envelope,
    parsed: &Parsed,
    target: &TokenTarget,
) -> Result<(), &'static str> {
    let from_ok = parsed
        .from
        .as_ref()
        .is_some_and(|a| *a == target.participant.address);
    let envelope_ok = match envelope.mail_from.as_deref().filter(|s| !s.is_empty()) {
        None => true,
        Some(sender) => Address::parse(sender).is_ok_and(|a| a == target.participant.address),
    };
    match (from_ok, envelope_ok) {
        (true, true) => Ok(()),
        (true, false) => Err("envelope-sender-mismatch"),
        (false, _) => Err("sender-mismatch"),
    }
}

fn log_outcome(door: Via, outcome: &Outcome) {
    let door = door.as_str();
    let (word, reason) = match outcome {
        Outcome::Filed { .. } => ("filed", ""),
        Outcome::Duplicate { .. } => ("duplicate", ""),
        Outcome::Held { reason, .. } => ("held", reason.as_str()),
        Outcome::Rejected { reason } => ("rejected", *reason),
        Outcome::DeliveryStatus { .. } => ("delivery-status", ""),
        Outcome::Ignored { reason } => ("ignored", *reason),
    };
    crate::metrics::count(
        &crate::metrics::metrics().inbound,
        [("door", door), ("outcome", word), ("reason", reason)],
    );
    match outcome {
        Outcome::Filed { thread, message } => {
            info!(door, outcome = "filed", %thread, message_id = %message, "inbound message filed")
        }
        Outcome::Duplicate { thread } => {
            info!(door, outcome = "duplicate", %thread, "inbound message already filed")
        }
        Outcome::Held { id, reason } => {
            info!(
                door,
                outcome = "held",
                held_id = format!("{id:016x}"),
                reason = reason.as_str(),
                "inbound message held for review"
            )
        }
        Outcome::Rejected { reason } => {
            info!(
                door,
                outcome = "rejected",
                reason,
                "inbound message not filed"
            )
        }
        Outcome::DeliveryStatus { notification } => {
            info!(door, outcome = "delivery-status", %notification, "delivery report recorded")
        }
        Outcome::Ignored { reason } => {
            info!(door, outcome = "ignored", reason, "inbound message ignored")
        }
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

#[cfg(test)]
mod tests;
