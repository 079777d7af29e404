//! The database: threads, participants, messages, the outbox, the inbound ledger and events.
//!
//! Callers deal in plaintext and domain types; sealing and unsealing happen here, with the
//! keyring the store was opened with, so no caller can forget to encrypt a body. Only SQLite is
//! implemented; queries use `$n` placeholders and portable SQL so a PostgreSQL backend can slot
//! in behind the same methods.
//!
//! Two drivers reach the one SQLite file: sqlx for everything asynchronous, and rusqlite for
//! the inbound commit ([`InboundWriter`]), which runs on a thread of its own where blocking calls are
//! the cheap ones. Both take the same in-process write lock.

mod held;
mod inbound;
#[cfg(test)]
mod migration_tests;
mod outbox;
mod sql;
#[cfg(test)]
pub(crate) mod testing;
mod threads;
mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{SqlSafeStr, SqlitePool};

use crate::crypto::{Keyring, SealError};
use crate::domain::{Address, ThreadId};

pub use held::{HeldEnvelope, HeldMessage, HeldSummary, Release, SealedHeld};
pub use inbound::{Committed, Inbound, InboundAction, ParticipantRef, TokenTarget};
pub use outbox::{Attempt, Delivery, DeliveryContent, NotificationRecord};
pub use threads::{
    MessageView, NewParticipant, NewThread, ParticipantView, Posted, SealedMessage, ThreadSummary,
    ThreadView,
};
pub use writer::InboundWriter;

/// Why a store operation failed. Messages carry ids and addresses, never content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another item's commit failed, and this item was in the same transaction.
    #[error("the batch this item was committed with failed: {0}")]
    Batch(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored data of thread {thread} cannot be opened: {source}")]
    Seal { thread: ThreadId, source: SealError },
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("no thread {0}")]
    UnknownThread(ThreadId),
    #[error("{address} is not a participant of thread {thread}")]
    NotParticipant { thread: ThreadId, address: Address },
    #[error("thread {0} is closed")]
    ThreadClosed(ThreadId),
    #[error("the participant was removed from thread {0}")]
    Revoked(ThreadId),
    #[error("no held message {0:016x}")]
    UnknownHeld(i64),
    #[error("held message {0:016x} was already released or rejected")]
    HeldDecided(i64),
    /// The database (or the part of Sealpost that writes to it) cannot be used right now.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Invalid(String),
}

/// The database, opened with the keyring that seals its content.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: SqlitePool,
    /// The database file, for the inbound writer's own connection.
    path: PathBuf,
    keyring: Arc<Keyring>,
    /// SQLite has one writer at a time. Writers of this process queue here, where a waiter
    /// wakes the moment the lock is free, instead of in SQLite's busy handler, which sleeps
    /// in steps of milliseconds.
    write_lock: Arc<tokio::sync::Mutex<()>>,
    /// Unwrapped thread keys, so inbound mail to a busy thread does not re-read and unwrap its
    /// key for every message. Bounded; keys of a thread never change once made.
    key_cache: Arc<std::sync::Mutex<std::collections::HashMap<ThreadId, crate::crypto::DataKey>>>,
}

/// How many unwrapped thread keys the cache holds before it starts over.
const KEY_CACHE_LIMIT: usize = 10_000;

/// A write transaction holding the process's write lock until it ends.
pub(crate) struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;
    fn deref(&self) -> &sqlx::SqliteConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }
}

fn migrator() -> Migrator {
    migrator_until(i64::MAX)
}

/// The migrations up to and including schema version `last` (tests build old databases).
fn migrator_until(last: i64) -> Migrator {
    let steps: &[(i64, &str, &'static str)] = &[
        (
            1,
            "init",
            include_str!("../../migrations/sqlite/0001_init.sql"),
        ),
        (
            2,
            "outbox message id",
            include_str!("../../migrations/sqlite/0002_outbox_message_id.sql"),
        ),
        (
            3,
            "held mail and hardening",
            include_str!("../../migrations/sqlite/0003_held_and_hardening.sql"),
        ),
    ];
    Migrator::with_migrations(
        steps
            .iter()
            .filter(|(version, _, _)| *version <= last)
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    ///
    /// A new SQLite file is created with mode 0600 (its write-ahead log inherits that mode), in
    /// write-ahead-log mode with `synchronous = FULL`: a commit is on disk before Sealpost
    /// acknowledges anything that depends on it.
    pub async fn open(url: &str, keyring: Arc<Keyring>) -> Result<Store, StoreError> {
        let opts = SqliteConnectOptions::from_str(url)?;
        let path = opts.get_filename().to_owned();
        prepare_file(&path)?;
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("secure_delete", "on")
            // Savepoint journals and sorts stay in memory: as files they would hold copies of
            // database pages (addresses, sealed content) in /var/tmp, outside the data directory.
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(opts)
            .await?;
        migrator().run(&pool).await?;
        let store = Store {
            pool,
            path,
            keyring,
            write_lock: Arc::new(tokio::sync::Mutex::new(())),
            key_cache: Arc::default(),
        };
        store.seal_display_names().await?;
        store.normalise_addresses().await?;
        Ok(store)
    }

    /// Re-normalises participant addresses stored before schema version 3, which folded case
    /// with Unicode rules and kept domains in Unicode: now ASCII case only, domains as A-labels
    /// (see [`Address`]). Only non-ASCII addresses can differ; once done, one query that finds
    /// nothing.
    async fn normalise_addresses(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, address FROM participants WHERE address GLOB '*[^ -~]*'")
                .fetch_all(&self.pool)
                .await?;
        let changed: Vec<(i64, String)> = rows
            .into_iter()
            .filter_map(|(id, stored)| {
                let now = Address::parse(&stored).ok()?;
                (now.as_str() != stored).then(|| (id, now.as_str().to_owned()))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, address) in &changed {
            sqlx::query("UPDATE participants SET address = $1 WHERE id = $2")
                .bind(address)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves display names written in clear by schema versions before 3 into their sealed
    /// column. SQL cannot seal, so this part of migration 0003 runs here, at every open: once
    /// done, it is one query that finds nothing.
    async fn seal_display_names(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, i64, String)> = sqlx::query_as(
            "SELECT id, thread_id, display_name FROM participants WHERE display_name IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, thread, name) in &rows {
            let thread = ThreadId(*thread);
            let key = self.thread_key(thread).await?;
            let sealed = key.seal(
                crate::crypto::Binding::ParticipantName(thread, crate::domain::ParticipantId(*id)),
                name.as_bytes(),
            );
            sqlx::query(
                "UPDATE participants SET display_name_sealed = $1, display_name = NULL WHERE id = $2",
            )
            .bind(sealed)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The keyring this store seals with.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// The keyring this store seals with, for parts that sign and verify beside it.
    pub fn shared_keyring(&self) -> Arc<Keyring> {
        self.keyring.clone()
    }

    /// Closes every connection, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction that takes the write lock at once, so two writers never
    /// deadlock on a lock upgrade.
    async fn write_tx(&self) -> Result<WriteTx, StoreError> {
        let guard = self.write_lock.clone().lock_owned().await;
        Ok(WriteTx {
            tx: self.pool.begin_with("BEGIN IMMEDIATE").await?,
            _guard: guard,
        })
    }
}

/// Creates the database file's directory (0700) and the file itself (0600) before SQLite does,
/// because SQLite would create it with the process umask.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let err = |source| StoreError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(err)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(e)),
    }
}
