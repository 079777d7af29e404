//! The database: threads, participants, messages, the outbox, the inbound ledger, held mail and
//! the audit trail — behind one facade, [`Store`], with domain types in and out.
//!
//! Callers deal in plaintext and domain types; sealing and opening happen here, with the
//! keyring the store was opened with, so no caller can forget to encrypt a body (or see a data
//! key: what must be sealed away from the async workers is sealed through a [`Sealer`]). Errors
//! are classified by cause ([`ErrorClass`]).
//!
//! The facade deals in [`ops`] (the write vocabulary) and [`backend::Backend`] (the engine,
//! and the one list of reads every engine provides); it never names an engine's modules. The
//! SQL is written once for every engine: the reads in `queries/` (each engine mounts them
//! with its own sqlx types), the writes in `writes/` against [`sql::Sql`] (each engine's
//! writer runs them on its transaction). An engine's own folder holds what differs: the
//! connection settings, its adapter of [`sql::Sql`], its writer — `sqlite/`, and `postgres/`
//! (so far its schema, opening under the migrator's lock, and adapter).
//!
//! # Row ids
//!
//! Decided once, for every engine: a row's *internal* key is sequential (SQLite's rowid, a
//! PostgreSQL identity column), so inserts append to the end of a B-tree instead of touching a
//! random leaf; a row whose id leaves the database — in a reply token, a link, a URL, an API
//! answer, a log line (threads, participants, messages, notifications, held mail, API keys,
//! webhooks) — also has a *public* id, 63 random bits ([`crate::domain::ids`]), in a unique
//! column, so nobody can count or guess them. Order is never read from an id: counters
//! (`threads.message_seq`, the `counters` table) number what must be ordered. The tables of
//! this release still use the random id as the key itself, on both engines: PostgreSQL's
//! starting schema (`migrations/postgres/`) keeps SQLite's columns one for one, so that the
//! same queries serve both, and a PostgreSQL table is a heap in insertion order anyway (only
//! its key's index takes random inserts). Moving both to the split is one migration per
//! engine, with the performance issue whose disk budget depends on it. Code outside the
//! engines only ever sees public ids, so the change does not reach it.
//!
//! # Concurrent writers
//!
//! Every operation is written as if another writer could run between its statements: numbers
//! come from `UPDATE … RETURNING` on a counter, claims from one `UPDATE … WHERE` that only
//! matches free rows, first-comers from unique keys with `ON CONFLICT`. Where an operation
//! reads a row to decide what to write (a person's standing before a sign-in, a thread's
//! status before a post, a code's latest before a new one), the row is the engine's to lock
//! for the transaction: SQLite's writer holds the database's write lock from the first
//! statement (`BEGIN IMMEDIATE`), PostgreSQL reads it `FOR UPDATE`. The decision itself is a
//! function in [`crate::domain`], so both engines decide alike.

pub mod api_keys;
mod backend;
pub mod backup;
pub mod codes;
mod error;
pub mod feed;
mod held;
pub mod idempotency;
mod inbound;
#[cfg(test)]
mod migration_tests;
mod model;
pub(crate) mod ops;
mod outbox;
mod people;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
pub mod projection;
pub mod queue;
mod rows;
pub mod scheduled;
pub(crate) mod sealing;
pub(crate) mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(test)]
pub(crate) mod testing;
mod threads;
pub mod web;
pub mod webhooks;
mod writes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::clock::Clock;
use crate::crypto::{DataKey, Keyring};
use crate::domain::{Address, ParticipantId, ThreadId};
use backend::Backend;
use ops::{Done, Op};

pub use error::{ErrorClass, StoreError};
pub use model::{
    Attempt, Committed, Consent, Conversation, Delivery, DeliveryContent, HeldEnvelope,
    HeldMessage, HeldSummary, Inbound, InboundAction, MessageView, NewParticipant, NewThread,
    Notice, NotificationRecord, ParticipantRef, ParticipantView, PersonDetails, PersonView, Posted,
    ReadReceipt, Release, ThreadFilter, ThreadSummary, ThreadView, TokenTarget, Withdrawn,
};
pub use sealing::{Answers, SealedHeld, SealedMessage, SealedRaw, Sealer};

/// The database, opened with the keyring that seals its content. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// The engine: every read and every write.
    backend: Backend,
    keyring: Arc<Keyring>,
    /// The time every row is stamped with, and every part that has the store reads.
    clock: Clock,
    /// Unwrapped thread keys, so mail to a busy thread does not re-read and unwrap its key for
    /// every message. Bounded; a thread's key never changes once made.
    key_cache: Mutex<HashMap<ThreadId, DataKey>>,
}

/// How many unwrapped thread keys the cache holds before it starts over.
const KEY_CACHE_LIMIT: usize = 10_000;

impl Store {
    /// Opens (creating if needed) the database at `url`, brings its schema up to date and
    /// starts the writer thread.
    pub async fn open(url: &str, keyring: Arc<Keyring>, clock: Clock) -> Result<Store, StoreError> {
        let backend = Backend::open(url, clock.clone()).await?;
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                keyring,
                clock,
                key_cache: Mutex::default(),
            }),
        };
        store.seal_display_names().await?;
        store.normalise_addresses().await?;
        Ok(store)
    }

    /// The keyring this store seals with.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// The clock the store stamps rows with: every part that has the store reads time here.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// The keyring this store seals with, for parts that sign and verify beside it.
    pub fn shared_keyring(&self) -> Arc<Keyring> {
        self.inner.keyring.clone()
    }

    /// Whether the writer thread is running and no write has been stuck for `within` (a disk
    /// that hangs, a lock never released): what the daemon's watchdog reports on.
    pub fn writer_alive(&self, within: Duration) -> bool {
        self.inner.backend.writer_alive(within)
    }

    /// Whether the writer thread is running at all (it stops only when the store is closed, or
    /// by a defect).
    pub fn writer_running(&self) -> bool {
        self.inner.backend.writer_running()
    }

    /// How many outbox rows, webhook deliveries and held messages there are by status:
    /// (`outbox` | `webhook` | `held`, status, count).
    pub async fn status_counts(&self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.backend().status_counts().await
    }

    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.backend().ping().await
    }

    /// Finishes the writes in hand and closes the database.
    pub async fn close(&self) {
        self.inner.backend.close().await;
    }

    fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Test builds: the SQLite pool, for tests that look at rows directly.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &sqlx::SqlitePool {
        self.inner.backend.sqlite_pool()
    }

    async fn write(&self, op: Op) -> Result<Done, StoreError> {
        self.inner.backend.write(op).await
    }

    /// A thread's data key (cached).
    async fn thread_key(&self, thread: ThreadId) -> Result<DataKey, StoreError> {
        if let Some(k) = self
            .inner
            .key_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&thread)
        {
            return Ok(k.clone());
        }
        let row = self.backend().thread(thread).await?;
        let key = sealing::thread_key(self.keyring(), &row)?;
        let mut cache = self
            .inner
            .key_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(thread, key.clone());
        Ok(key)
    }

    /// Seals for one thread, wherever the caller wants the work done.
    pub async fn sealer(&self, thread: ThreadId) -> Result<Sealer, StoreError> {
        Ok(Sealer::new(thread, self.thread_key(thread).await?))
    }

    /// Moves display names written in clear by schema versions before 3 into their sealed
    /// column. SQL cannot seal, so this part of migration 0003 runs here, at every open: once
    /// done, it is one query that finds nothing.
    async fn seal_display_names(&self) -> Result<(), StoreError> {
        let rows = self.backend().names_in_clear().await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut sealed = Vec::with_capacity(rows.len());
        for (id, thread, name) in rows {
            let thread = ThreadId(thread);
            let key = self.thread_key(thread).await?;
            let participant = ParticipantId(id);
            sealed.push((
                participant,
                sealing::seal_name(thread, &key, participant, &name),
            ));
        }
        self.write(Op::SealNames(sealed)).await.map(drop)
    }

    /// Re-normalises participant addresses stored before schema version 3, which folded case
    /// with Unicode rules and kept domains in Unicode: now ASCII case only, domains as A-labels
    /// (see [`Address`]). Only non-ASCII addresses can differ; once done, one query that finds
    /// nothing.
    async fn normalise_addresses(&self) -> Result<(), StoreError> {
        let changed: Vec<(ParticipantId, Address)> = self
            .backend()
            .non_ascii_addresses()
            .await?
            .into_iter()
            .filter_map(|(id, stored)| {
                let now = Address::parse(&stored).ok()?;
                (now.as_str() != stored).then_some((ParticipantId(id), now))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        self.write(Op::SetAddresses(changed)).await.map(drop)
    }

    /// Test builds: runs SQL on the writer's connection (to install a fault).
    #[cfg(test)]
    pub(crate) async fn execute_for_test(&self, sql: &str) {
        self.write(Op::Execute(sql.to_owned())).await.unwrap();
    }
}

/// What a write returned, when it was not what the operation returns: a defect.
fn unexpected(op: &str) -> StoreError {
    StoreError::Corrupt(format!("{op}: the writer answered something else"))
}
