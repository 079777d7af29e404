//! The engine a store runs on, and the one list of what every engine provides.
//!
//! [`Backend`] is an enum over the engines this build has (each behind a cargo feature): two
//! known engines, chosen by the database URL, need no trait objects. The facade calls the
//! methods below and never names an engine's modules; an engine provides a `read` module with
//! one function per read listed in [`reads!`] (same name, same arguments after its pool) and
//! runs every [`Op`]. Adding an engine is one variant here and one arm per macro.

#[cfg(not(feature = "sqlite"))]
compile_error!("Sealpost needs a database engine: build with the `sqlite` feature");

use std::time::Duration;

use super::StoreError;
use super::ops::{Done, Op};
use super::rows::{
    DeliveryRows, EarlierIds, HeldRow, OutboxRow, PersonRow, TargetRow, ThreadCountsRow, ThreadRow,
    WholeThread,
};
use crate::clock::Clock;
use crate::domain::{
    Address, ApiKeyId, DeliveryStatus, HeldStatus, MessageId, NotificationId, ParticipantId,
    PersonId, ThreadId,
};

#[cfg(feature = "sqlite")]
use super::sqlite;

/// A database engine, opened.
pub(super) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Sqlite),
}

/// Runs `$body` with `$b` bound to whichever engine `$backend` is.
macro_rules! on_engine {
    ($backend:expr, $b:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($b) => $body,
        }
    };
}

impl Backend {
    /// Opens the database `url` names (creating it if the engine does), brings its schema up
    /// to date and starts what runs its writes.
    pub(super) async fn open(url: &str, clock: Clock) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            #[cfg(feature = "sqlite")]
            return Ok(Backend::Sqlite(sqlite::Sqlite::open(url, clock).await?));
        }
        let _ = clock;
        Err(StoreError::Invalid(format!(
            "database.url: this build of Sealpost has no engine for {}",
            url.split(':').next().unwrap_or("that URL")
        )))
    }

    /// Runs one write, returning once it is durably committed (or failed).
    pub(super) async fn write(&self, op: Op) -> Result<Done, StoreError> {
        on_engine!(self, b => b.write(op).await)
    }

    /// Whether the database answers.
    pub(super) async fn ping(&self) -> Result<(), StoreError> {
        on_engine!(self, b => b.ping().await)
    }

    /// Whether what runs the writes is alive and no write has been stuck for `within`.
    pub(super) fn writer_alive(&self, within: Duration) -> bool {
        on_engine!(self, b => b.writer_alive(within))
    }

    /// Whether what runs the writes is running at all.
    pub(super) fn writer_running(&self) -> bool {
        on_engine!(self, b => b.writer_running())
    }

    /// Finishes the writes in hand and closes every connection.
    pub(super) async fn close(&self) {
        on_engine!(self, b => b.close().await)
    }

    /// Test builds: the SQLite pool, for tests that look at rows directly.
    #[cfg(all(test, feature = "sqlite"))]
    pub(crate) fn sqlite_pool(&self) -> &sqlx::SqlitePool {
        match self {
            Backend::Sqlite(b) => &b.pool,
        }
    }
}

/// Backups copy a database file: what an engine that keeps one provides for it (the file's
/// consistent copy, what it holds, the newest schema this build knows).
#[cfg(feature = "sqlite")]
pub(super) mod file {
    pub(crate) use super::sqlite::backup::{Contents, contents, copy, latest_schema};

    /// The database file a URL names.
    pub(crate) fn path_of(url: &str) -> Result<std::path::PathBuf, super::StoreError> {
        super::sqlite::path_of(url)
    }
}

/// Declares the reads every engine provides, and the facade's way to them.
macro_rules! reads {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty; )*) => {
        impl Backend {
            $(
                $(#[$doc])*
                pub(super) async fn $name(&self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                    match self {
                        #[cfg(feature = "sqlite")]
                        Backend::Sqlite(b) => sqlite::read::$name(&b.pool, $($arg),*).await,
                    }
                }
            )*
        }
    };
}

reads! {
    /// One thread (an unknown one is [`StoreError::NotFound`]).
    fn thread(id: ThreadId) -> ThreadRow;
    fn thread_whole(id: ThreadId) -> WholeThread;
    fn threads() -> Vec<ThreadCountsRow>;
    fn threads_page(f: &super::ThreadFilter) -> Vec<ThreadCountsRow>;
    fn thread_ids() -> Vec<i64>;
    fn thread_reads(thread: ThreadId) -> Vec<(i64, i64, i64)>;
    fn target(thread: ThreadId, participant: ParticipantId) -> Option<TargetRow>;
    fn already_received(thread: ThreadId, header: &str) -> bool;
    fn notification_recipient(notification: NotificationId) -> Option<(ThreadId, ParticipantId)>;
    fn sent_bodies(thread: ThreadId, answered: Option<NotificationId>, window: u32) -> Vec<(i64, Vec<u8>)>;
    fn imap_outcome(uidvalidity: i64, uid: i64) -> Option<String>;
    fn notification_by_email_id(email_message_id: &str) -> Option<(NotificationId, ThreadId)>;
    fn notification_thread(id: NotificationId) -> Option<ThreadId>;
    fn deliveries(ids: &[NotificationId], history: i64) -> DeliveryRows;
    fn earlier_message_ids(ids: &[(NotificationId, ThreadId)], recent: usize) -> EarlierIds;
    fn notifications(status: Option<DeliveryStatus>, thread: Option<ThreadId>) -> Vec<OutboxRow>;
    fn person(address: &Address) -> Option<PersonRow>;
    fn people(kind: Option<crate::domain::PersonKind>) -> Vec<PersonRow>;
    fn staff_people(people: &[super::NewParticipant]) -> Vec<Address>;
    fn person_standing(person: PersonId) -> Option<crate::domain::lockout::Standing>;
    fn api_keys() -> Vec<(i64, String, String, i64, Option<i64>)>;
    fn api_key(id: ApiKeyId) -> Option<(Vec<u8>, String, Option<i64>)>;
    fn webhooks() -> Vec<(i64, String, String, String, i64, Option<i64>)>;
    fn due_delivery(id: i64) -> Option<(i64, i64, String, i64, Vec<u8>, String, i64, i64)>;
    fn webhook_deliveries(filter: &super::webhooks::DeliveryFilter) -> Vec<super::webhooks::DeliveryView>;
    /// Outbox, webhook and held counts by status: (`outbox` | `webhook` | `held`, status, count).
    fn status_counts() -> Vec<(String, String, i64)>;
    fn web_session(id_hash: &[u8]) -> Option<(i64, i64, i64, String, i64, i64, Option<i64>)>;
    fn passcode_hash(person: i64) -> Option<String>;
    fn events_after(after: i64, limit: i64) -> Vec<(i64, i64, Option<i64>, String, String)>;
    fn inbound_since(since: i64, limit: i64) -> Vec<super::feed::InboundRow>;
    fn held_list(status: Option<HeldStatus>) -> Vec<HeldRow>;
    fn held(id: i64) -> HeldRow;
    fn names_in_clear() -> Vec<(i64, i64, String)>;
    fn non_ascii_addresses() -> Vec<(i64, String)>;
    fn newer_link_sent(address: &str, participant: ParticipantId, issued_at: i64) -> bool;
    fn latest_code(link_hash: &[u8]) -> Option<(i64, i64, Vec<u8>, i64, Option<i64>)>;
    fn due_sms(id: i64) -> Option<(i64, String, i64, Vec<u8>, i64, i64)>;
    /// When the next row of a queue becomes claimable.
    fn next_due(queue: super::queue::Queue) -> Option<i64>;
    /// Who holds a lease that has not run out at `now`, and until when.
    fn lease_holder(name: &str, now: i64) -> Option<(String, i64)>;
    fn scheduled_job(id: i64) -> Option<super::scheduled::JobView>;
    fn scheduled_jobs(kind: Option<&str>) -> Vec<super::scheduled::JobView>;
    fn sms_list(limit: i64) -> Vec<(i64, String, String, i64, Option<String>, i64, Option<i64>)>;
    fn cancel_facts(thread: ThreadId, message: MessageId, author: ParticipantId) -> Option<crate::domain::message::CancelFacts>;
}
