//! Threads, participants, messages and modes: plain types and rules, no I/O.

pub mod address;
pub mod codes;
pub mod consent;
pub mod conversation;
pub mod fanout;
pub mod fate;
pub mod held;
pub mod idempotency;
pub mod ids;
pub mod kinds;
pub mod lockout;
pub mod mail;
pub mod message;
pub mod network;
pub mod notice;
pub mod person;
pub mod retry;
pub mod schedule;
pub mod text;
pub mod webhook;

pub use address::{Address, AddressError, Mailbox};
pub use ids::{ApiKeyId, MessageId, NotificationId, ParticipantId, PersonId, ThreadId, WebhookId};
pub use kinds::{
    ApiScope, AuthPolicy, DeliveryStatus, HeldStatus, HoldReason, LedgerOutcome, Mode,
    NoticeReason, PersonKind, PersonStatus, Role, Via,
};
