//! What goes in and out of the store: plain domain data, content in clear where a caller
//! needs it, no driver type anywhere. The store seals on the way in and opens on the way out.

use serde::{Deserialize, Serialize};

use super::sealing::{SealedHeld, SealedMessage, SealedRaw};
use crate::domain::{
    Address, DeliveryStatus, HeldStatus, HoldReason, LedgerOutcome, MessageId, Mode, NoticeReason,
    NotificationId, ParticipantId, PersonId, PersonKind, PersonStatus, Role, ThreadId, Via,
};

/// A person to add to a new thread.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub address: Address,
    pub display_name: Option<String>,
    pub role: Role,
}

/// Everything needed to open a thread with its first message.
#[derive(Debug, Clone)]
pub struct NewThread {
    pub subject: String,
    pub mode: Mode,
    /// The author of the first message (a staff member).
    pub author: NewParticipant,
    pub others: Vec<NewParticipant>,
    pub body: String,
    pub via: Via,
    /// The people outside the practice among `others` read one conversation together (a
    /// family, a couple); otherwise each gets a conversation of their own.
    pub shared: bool,
}

/// One conversation a new message opened, and who outside its author it went to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub posted: Posted,
    pub to: Vec<Address>,
}

/// What a post created: the message and one notification per other participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub thread_id: ThreadId,
    pub message_id: MessageId,
    pub notifications: Vec<NotificationId>,
}

/// A participant as shown to staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub address: Address,
    pub display_name: Option<String>,
    pub role: Role,
    pub revoked: bool,
    /// Whether the person agreed to convenience mode; `None` when they were never asked. Only
    /// staff and those who agreed get content in a convenience thread.
    pub consented: Option<bool>,
    /// They archived the conversation for themselves (until a new message in it).
    pub archived: bool,
}

/// A message, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub author: ParticipantId,
    pub author_address: Address,
    pub author_name: Option<String>,
    pub body: String,
    pub via: Via,
    pub created_at: i64,
    /// What sender authentication found, for a reply that came by email.
    pub auth: Option<String>,
    /// The message it answers, when known (see [`super::Answers`]).
    pub answers: Option<MessageId>,
}

/// A whole thread, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    pub id: ThreadId,
    pub subject: String,
    pub mode: Mode,
    pub closed: bool,
    pub created_at: i64,
    /// Messages held for review that name this thread (their senders get nothing: the
    /// sender may be forged; staff see that they are waiting).
    pub held: i64,
    pub participants: Vec<ParticipantView>,
    pub messages: Vec<MessageView>,
    /// What is left of the messages their authors took back: who, when, no content.
    pub withdrawn: Vec<Withdrawn>,
    /// Who saw which message on the web view, and when (first time).
    pub reads: Vec<ReadReceipt>,
    /// Several people outside the practice read it together, on purpose.
    pub shared: bool,
}

/// A message its author took back before anyone had it: its place in the conversation and
/// the audit trail, never its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    pub id: MessageId,
    pub author: ParticipantId,
    pub author_address: Address,
    pub author_name: Option<String>,
    pub created_at: i64,
    pub withdrawn_at: i64,
    /// The message it answered, when known.
    pub answers: Option<MessageId>,
}

/// A participant saw a message on the web view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadReceipt {
    pub message: MessageId,
    pub participant: ParticipantId,
    pub at: i64,
}

impl ThreadView {
    /// Who (by address) saw `message`, and when, oldest first.
    pub fn read_by(&self, message: MessageId) -> Vec<(Address, i64)> {
        let mut out: Vec<(Address, i64)> = self
            .reads
            .iter()
            .filter(|r| r.message == message)
            .filter_map(|r| {
                self.participants
                    .iter()
                    .find(|p| p.id == r.participant)
                    .map(|p| (p.address.clone(), r.at))
            })
            .collect();
        out.sort_by_key(|(_, at)| *at);
        out
    }
}

/// Which threads, and where a page starts.
#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    /// Only closed (`true`) or open (`false`) threads.
    pub closed: Option<bool>,
    /// Only threads with this participant.
    pub participant: Option<Address>,
    /// Only threads active at or after this time.
    pub updated_since: Option<i64>,
    /// After the thread with this `seq`, in the newest-first order.
    pub after: Option<i64>,
    pub limit: usize,
}

/// One line of the thread list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub id: ThreadId,
    pub subject: String,
    pub mode: Mode,
    pub closed: bool,
    pub created_at: i64,
    /// Where it stands among all threads, by creation.
    pub seq: i64,
    pub participants: i64,
    pub messages: i64,
    /// Held messages waiting for a decision.
    pub held: i64,
    pub last_activity_at: i64,
}

/// One outbox row as `sealpost outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: NotificationId,
    pub thread_id: ThreadId,
    /// The message it announces (none for a notice).
    pub message_id: Option<MessageId>,
    pub recipient: String,
    /// `message`, or `notice-…` for a rejection notice.
    pub kind: String,
    pub mode: Mode,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    /// When it is tried next, while it waits (queued or deferred).
    pub next_attempt_at: Option<i64>,
    pub sent_at: Option<i64>,
    pub relay_reply: Option<String>,
    /// How the connection to the relay was protected when it was sent.
    pub tls: Option<String>,
}

/// What a notification may say. A secure-mode notification is loaded without opening the
/// thread's content at all, so the composer cannot leak what it never had.
#[derive(Debug, Clone)]
pub enum DeliveryContent {
    Secure,
    /// A short content-free notice to a participant whose email reply could not be filed.
    Notice(NoticeReason),
    Convenience {
        subject: String,
        /// The message being announced.
        message: MessageView,
        /// Earlier messages of the thread, newest first.
        history: Vec<MessageView>,
    },
}

/// A claimed notification with everything needed to compose and send it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: NotificationId,
    pub thread_id: ThreadId,
    pub recipient: ParticipantView,
    pub created_at: i64,
    pub attempts: i64,
    /// The Message-ID fixed at an earlier attempt, if any.
    pub email_message_id: Option<String>,
    /// Message-IDs of earlier notifications of this thread to this participant, oldest first.
    /// Empty from [`Store::deliveries`]: filled in by [`Store::fill_references`].
    pub references: Vec<String>,
    pub content: DeliveryContent,
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted by the relay (or spool), with its reply.
    Sent {
        reply: String,
        at: i64,
        /// How the connection to the relay was protected (`None` for the spool).
        tls: Option<String>,
        /// A convenience notification that went out as a secure one: TLS to the relay could
        /// not be had for content (`outbound.tls_fallback_after`).
        as_secure: bool,
    },
    /// A temporary failure; try again at `next_attempt_at`.
    Deferred { error: String, next_attempt_at: i64 },
    /// A permanent failure (5xx, or no attempts left).
    Failed { error: String, at: i64 },
    /// Not attempted: the recipient was removed from the thread after it was queued.
    Cancelled { at: i64 },
}

/// A person's choice about convenience mode (content by email), as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub address: Address,
    /// Agreed to receive message content by ordinary email.
    pub convenience: bool,
    /// What they were shown when they chose.
    pub text: String,
    /// How it was recorded: `cli:NAME`, `web`, `api`; `bounce` or `complaint` when Sealpost
    /// withdrew it.
    pub by: String,
}

/// A person in the directory, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonView {
    pub id: PersonId,
    pub address: Address,
    pub created_at: i64,
    pub updated_at: i64,
    pub details: PersonDetails,
    /// `None` when never asked.
    pub convenience: Option<bool>,
    pub convenience_at: Option<i64>,
    pub convenience_text: Option<String>,
    pub convenience_by: Option<String>,
    /// Where they stand with the web view's identity check (failed attempts, a lock).
    pub standing: crate::domain::lockout::Standing,
}

/// What staff record about a person (`person add|update`); the personal data among it (name,
/// date of birth, mobile number) is sealed in the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonDetails {
    pub kind: PersonKind,
    pub name: Option<String>,
    /// A staff member's title ("Nurse", "Dr").
    pub title: Option<String>,
    /// A colleague's practice.
    pub practice: Option<String>,
    /// A patient's date of birth, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// E.164 (`+4915112345678`).
    pub mobile: Option<String>,
    /// Whether they get notifications at all.
    pub notifications: bool,
    pub status: PersonStatus,
}

impl PersonDetails {
    /// Whether the details fit the person's kind: a date of birth is a patient's, a title
    /// staff's, a practice a colleague's.
    pub fn check(&self) -> Result<(), String> {
        let misplaced = |field: &str, value: &Option<String>, kind: PersonKind| {
            if value.is_some() && self.kind != kind {
                Err(format!(
                    "{field} is kept only for people of kind {kind} (this one is {})",
                    self.kind
                ))
            } else {
                Ok(())
            }
        };
        misplaced("a date of birth", &self.birth_date, PersonKind::Patient)?;
        misplaced("a title", &self.title, PersonKind::Staff)?;
        misplaced("a practice", &self.practice, PersonKind::Colleague)
    }

    /// What a person the practice has not described yet is taken to be.
    pub fn new(kind: PersonKind) -> PersonDetails {
        PersonDetails {
            kind,
            name: None,
            title: None,
            practice: None,
            birth_date: None,
            mobile: None,
            notifications: true,
            status: PersonStatus::Registered,
        }
    }
}

/// Where a verified reply token points.
#[derive(Debug, Clone)]
pub struct TokenTarget {
    pub thread: ThreadId,
    pub mode: Mode,
    pub closed: bool,
    pub participant: ParticipantRef,
    /// The participant may write by email in a convenience thread: staff, or a recipient who
    /// consented to convenience mode.
    pub by_email: bool,
    /// The reply address's signature verified but its lifetime is over (set by the pipeline;
    /// the store does not read tokens).
    pub expired: bool,
}

/// A participant as the inbound side needs it: who, not what they are called (display names
/// are sealed; deciding about a reply needs no name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRef {
    pub id: ParticipantId,
    pub address: Address,
    pub role: Role,
    pub revoked: bool,
}

/// What to do with one decided inbound message.
#[derive(Debug, Clone)]
pub enum InboundAction {
    /// File the reply (unless this Message-ID was already filed in the thread), keeping the raw
    /// message sealed under the thread's key (`raw`, for audit). `release` names the held
    /// message this filing releases.
    File {
        message: SealedMessage,
        raw: SealedRaw,
        release: Option<Release>,
    },
    /// Keep the message sealed in the held queue; optionally a notice to its participant.
    /// Refused ([`Committed::HeldFull`]) when a quota of `limits` is full.
    Hold {
        held: SealedHeld,
        notice: Option<Notice>,
        limits: crate::domain::held::Limits,
    },
    /// Record the outcome only; optionally a notice to a verified participant.
    Record {
        outcome: LedgerOutcome,
        reason: String,
        notice: Option<Notice>,
    },
    /// A delivery status notification about one of our notifications. Only a `verified` one —
    /// sent with a null sender to the notification's own MAC-tagged bounce address — changes
    /// its status; any other is recorded as information.
    DeliveryStatus {
        notification: NotificationId,
        failed: bool,
        verified: bool,
        /// A spam complaint (an ARF feedback report), not a bounce.
        complaint: bool,
        detail: String,
    },
}

/// A content-free notice about one message to its participant: queued within the limit of
/// `per_hour` notices to one person an hour, else recorded as suppressed, with why (see
/// [`crate::domain::notice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub participant: ParticipantId,
    pub reason: NoticeReason,
    pub per_hour: u32,
}

/// One decided inbound message, ready to commit.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Chosen before sealing: the raw message's additional authenticated data names it.
    pub id: i64,
    pub door: Via,
    pub received_at: i64,
    pub thread: Option<ThreadId>,
    /// The Message-ID header (or a digest of the message when it has none): the dedupe key.
    pub header_message_id: Option<String>,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
    pub action: InboundAction,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Filed(Posted),
    /// The same Message-ID was filed before; nothing new.
    Duplicate,
    /// The outcome was recorded; `notice_queued` says whether a notice went to the outbox.
    Recorded {
        notice_queued: bool,
    },
    /// The message is in the held queue under its ledger id.
    Held {
        id: i64,
    },
    /// A quota of the held queue is full: nothing was kept, the sender must try again later.
    HeldFull(crate::domain::held::Quota),
    /// A notification's delivery status was updated (or, for a transient report, noted).
    StatusUpdated {
        notification: NotificationId,
    },
}

/// What the message came with besides its bytes, as the door saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEnvelope {
    pub mail_from: Option<String>,
    pub null_sender: bool,
    pub rcpt_to: Vec<String>,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
}

/// One line of `sealpost held list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSummary {
    pub id: i64,
    pub received_at: i64,
    pub door: Via,
    pub reason: HoldReason,
    pub status: HeldStatus,
    pub thread: Option<ThreadId>,
    pub participant: Option<ParticipantId>,
    pub size: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    /// What sender authentication found before it was held, if it ran.
    pub auth: Option<String>,
}

/// A held message, opened.
#[derive(Debug, Clone)]
pub struct HeldMessage {
    pub summary: HeldSummary,
    pub header_message_id: Option<String>,
    pub envelope: HeldEnvelope,
    pub raw: Vec<u8>,
}

/// Who released a held message, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub held: i64,
    pub by: String,
    /// What sender authentication found when it was held, for the filed message's record.
    pub held_auth: Option<String>,
}
