//! The store's write vocabulary: every change to the database as a typed operation, and what
//! each returns. The facade builds these (content already sealed); a backend runs them, all of
//! an operation's rows or none. Neutral ground: no backend's types appear here, and every
//! backend runs every operation.

use crate::domain::{
    Address, ApiKeyId, MessageId, NotificationId, ParticipantId, PersonId, ThreadId,
};
use crate::store::api_keys::ApiKeyRecord;
use crate::store::codes::{NewCode, SmsAttempt};
use crate::store::idempotency::{Found, IdempotencyKey, SealedAnswer};
use crate::store::people::SealedPerson;
use crate::store::queue::Queue;
use crate::store::scheduled::{Housekeeping, JobOutcome, ScheduledJob};
use crate::store::sealing::{SealedParticipant, SealedPost, SealedThread};
use crate::store::webhooks::{NewWebhookRow, WebhookAttempt};
use crate::store::{Attempt, Committed, Consent, Inbound, Posted};

/// A write, as the writer thread runs it.
pub(crate) enum Op {
    /// The conversations one new message opens: all of them, or none.
    CreateThreads(Vec<SealedThread>),
    Post(SealedPost),
    CloseThread(ThreadId),
    ReopenThread(ThreadId),
    RemoveParticipant(ThreadId, Address),
    /// `bool`: the conversation may become shared.
    AddParticipant(ThreadId, SealedParticipant, bool),
    Inbound(Box<Inbound>),
    /// Claims due rows of a queue (see [`crate::store::queue`]).
    Claim {
        queue: Queue,
        holder: String,
        limit: i64,
        lease_secs: i64,
    },
    /// Gives back a holder's claims on rows it did not work on.
    Release {
        queue: Queue,
        holder: String,
        ids: Vec<i64>,
    },
    /// Frees the claims and leases of earlier runs of this instance.
    TakeBack {
        prefix: String,
    },
    HoldLease {
        name: String,
        holder: String,
        secs: i64,
    },
    ReleaseLease {
        name: String,
        holder: String,
    },
    /// Queues a job due at a time, unless one of the same kind and key exists.
    Schedule(ScheduledJob),
    /// Records what a run of a scheduled job came to, and queues the next one.
    SettleScheduled {
        id: i64,
        outcome: JobOutcome,
        next: Option<ScheduledJob>,
    },
    /// Deletes what nothing needs any more: rows older than the times given.
    Housekeep(Housekeeping),
    FixMessageIds(Vec<(NotificationId, String)>),
    RecordAttempts(Vec<(NotificationId, Attempt)>),
    RejectHeld {
        id: i64,
        by: String,
    },
    SetConsent(Consent),
    PutPerson(Box<SealedPerson>),
    CreateApiKey(ApiKeyRecord),
    IdempotencyBegin(IdempotencyKey),
    IdempotencyFinish {
        api_key: ApiKeyId,
        key: String,
        answer: Option<SealedAnswer>,
    },
    RevokeApiKey(ApiKeyId),
    RemovePerson(Address),
    CreateWebhook(NewWebhookRow),
    RemoveWebhook(i64),
    RecordWebhookAttempts(Vec<(i64, WebhookAttempt)>),
    Web(WebOp),
    Code(CodeOp),
    /// Moves display names written in clear before schema version 3 into their sealed column.
    SealNames(Vec<(ParticipantId, Vec<u8>)>),
    /// Re-normalised participant addresses (schema version 3).
    SetAddresses(Vec<(ParticipantId, Address)>),
    /// Test builds: any statement (to install a fault).
    #[cfg(test)]
    Execute(String),
}

impl Op {
    /// A name for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::CreateThreads(_) => "create-threads",
            Op::Post(_) => "post",
            Op::CloseThread(_) => "close-thread",
            Op::ReopenThread(_) => "reopen-thread",
            Op::RemoveParticipant(..) => "remove-participant",
            Op::AddParticipant(..) => "add-participant",
            Op::Inbound(_) => "inbound",
            Op::Claim { .. } => "claim",
            Op::Release { .. } => "release",
            Op::TakeBack { .. } => "take-back",
            Op::HoldLease { .. } => "hold-lease",
            Op::ReleaseLease { .. } => "release-lease",
            Op::Schedule(_) => "schedule",
            Op::SettleScheduled { .. } => "settle-scheduled",
            Op::Housekeep(_) => "housekeep",
            Op::FixMessageIds(_) => "fix-message-ids",
            Op::RecordAttempts(_) => "record-attempts",
            Op::RejectHeld { .. } => "reject-held",
            Op::SetConsent(_) => "set-consent",
            Op::PutPerson(_) => "put-person",
            Op::CreateApiKey(_) => "create-api-key",
            Op::IdempotencyBegin(_) => "idempotency-begin",
            Op::IdempotencyFinish { .. } => "idempotency-finish",
            Op::RevokeApiKey(_) => "revoke-api-key",
            Op::RemovePerson(_) => "remove-person",
            Op::CreateWebhook(_) => "create-webhook",
            Op::RemoveWebhook(_) => "remove-webhook",
            Op::RecordWebhookAttempts(_) => "record-webhook-attempts",
            Op::Web(op) => op.name(),
            Op::Code(op) => op.name(),
            Op::SealNames(_) => "seal-names",
            Op::SetAddresses(_) => "set-addresses",
            #[cfg(test)]
            Op::Execute(_) => "execute",
        }
    }
}

/// What an operation returns.
pub(crate) enum Done {
    Posted(Posted),
    PostedAll(Vec<Posted>),
    Committed(Committed),
    Count(u64),
    Held(bool),
    Ids(Vec<i64>),
    MessageIds(Vec<String>),
    Found(Found),
    Reserve(crate::domain::lockout::Reservation),
    Nothing,
}

/// A write of the web view.
pub(crate) enum WebOp {
    /// Reserves one of the person's attempts before what was typed is compared (see
    /// [`crate::domain::lockout`]).
    Reserve {
        person: PersonId,
        max_failures: u32,
    },
    /// A reserved attempt of `person` (from the link of `thread`) failed: at the last one, the
    /// person is locked out for a while, their sessions end, and staff are told when the lock
    /// comes back.
    CheckFailed {
        person: PersonId,
        thread: ThreadId,
        max_failures: u32,
    },
    /// A code passed from a link issued at `link_issued` lifts a temporary lock made before it.
    LiftLock {
        person: PersonId,
        thread: ThreadId,
        link_issued: i64,
    },
    /// A passed check: unless a lock came meanwhile, the count starts over and a session
    /// opens.
    SignIn {
        id_hash: Vec<u8>,
        person: PersonId,
        participant: ParticipantId,
    },
    Touch(Vec<u8>),
    SignOut(Vec<u8>),
    /// Messages seen by a participant (the first time counts).
    Read {
        participant: ParticipantId,
        messages: Vec<i64>,
    },
    /// Lifts a lockout; every session the person had is already ended.
    Unlock {
        address: Address,
        by: String,
    },
    /// Sets (or, with `None`, clears) the passcode hash of the person at `address`.
    SetPasscode {
        address: Address,
        hash: Option<String>,
        by: String,
    },
    /// The author takes back a message nobody acted on yet.
    Cancel {
        thread: ThreadId,
        message: MessageId,
        author: ParticipantId,
    },
    /// A participant archives a conversation for themselves, or moves it back.
    Archive {
        participant: ParticipantId,
        archived: bool,
    },
    /// Someone at the practice read messages outside the web view (`reader`: `cli`, or
    /// `api:<key id>`).
    Accessed {
        messages: Vec<i64>,
        reader: String,
    },
}

impl WebOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WebOp::Reserve { .. } => "web-reserve-check",
            WebOp::CheckFailed { .. } => "web-check-failed",
            WebOp::LiftLock { .. } => "web-lift-lock",
            WebOp::SignIn { .. } => "web-sign-in",
            WebOp::Touch(_) => "web-touch",
            WebOp::SignOut(_) => "web-sign-out",
            WebOp::Read { .. } => "web-read",
            WebOp::Unlock { .. } => "unlock-person",
            WebOp::Cancel { .. } => "cancel-message",
            WebOp::SetPasscode { .. } => "set-passcode",
            WebOp::Archive { .. } => "archive",
            WebOp::Accessed { .. } => "record-access",
        }
    }
}

/// A write of the 24-hour rule.
pub(crate) enum CodeOp {
    /// Someone asked for a code from a link: with `code`, the number matched (or no number
    /// is asked) and a code is made and queued for sending, unless one for the same link was
    /// made less than `throttle_secs` ago; without, nothing is sent. Both are audited.
    Asked {
        person: PersonId,
        thread: ThreadId,
        code: Option<NewCode>,
        throttle_secs: i64,
    },
    /// The right code was typed.
    Passed {
        id: i64,
        person: PersonId,
        thread: ThreadId,
    },
    /// A code spent without passing.
    Void(i64),
    RecordSms(Vec<(i64, SmsAttempt)>),
}

impl CodeOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            CodeOp::Asked { .. } => "web-code-asked",
            CodeOp::Passed { .. } => "web-code-passed",
            CodeOp::Void(_) => "web-code-void",
            CodeOp::RecordSms(_) => "record-sms",
        }
    }
}
