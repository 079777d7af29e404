//! The SQLite backend: one database file, read through sqlx's pool, written by one thread.
//!
//! Every write — opening a thread, a post, an inbound filing, the outbox's claims and outcomes,
//! held mail decisions, events — is a typed operation ([`crate::store::ops::Op`]) that the writer thread
//! ([`writer`]) runs on a connection of its own, synchronously, many at a time in one
//! transaction (each in a savepoint) with one fsync. Reads go through sqlx's pool ([`read`]).
//! The SQL and the connection settings of this backend live in this folder and nowhere else,
//! so a PostgreSQL backend can stand beside it.

pub(crate) mod backup;
#[path = "../queries/mod.rs"]
pub(super) mod read;
mod sql;
pub(super) mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::StoreError;
use super::ops::{Done, Op};

/// This engine's sqlx types, by the names the shared queries (`store/queries/`) use.
pub(super) mod engine {
    pub(crate) type Db = sqlx::Sqlite;
    pub(crate) type Pool = sqlx::SqlitePool;
    pub(crate) type Conn = sqlx::SqliteConnection;
    pub(crate) type Args = sqlx::sqlite::SqliteArguments;
    pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
}
use crate::clock::Clock;
use writer::Writer;

/// An opened SQLite database: sqlx's pool for reads, the writer thread for every write.
pub(crate) struct Sqlite {
    pub(crate) pool: SqlitePool,
    writer: Writer,
}

impl Sqlite {
    /// Opens (creating if needed) the database file `url` names, brings its schema up to date
    /// and starts the writer thread, which stamps rows with `clock`'s time.
    pub(crate) async fn open(url: &str, clock: Clock) -> Result<Sqlite, StoreError> {
        let pool = open_pool(url).await?;
        let writer = Writer::start(&path_of(url)?, clock)?;
        Ok(Sqlite { pool, writer })
    }

    pub(crate) async fn write(&self, op: Op) -> Result<Done, StoreError> {
        self.writer.run(op).await
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) fn writer_alive(&self, within: Duration) -> bool {
        self.writer.alive(within)
    }

    pub(crate) fn writer_running(&self) -> bool {
        self.writer.running()
    }

    /// Finishes the writes in hand, stops the writer thread, then closes the pool (the last
    /// connection to close folds the write-ahead log back into the database file).
    pub(crate) async fn close(&self) {
        self.writer.stop().await;
        self.pool.close().await;
    }
}

/// The schema's migrations, from `migrations/sqlite/`.
pub(super) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another process's write lock (the CLI and the daemon share
/// the file) before the operation fails as unavailable. (One second in unit tests, which
/// hold the lock on purpose.)
#[cfg(not(test))]
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
#[cfg(test)]
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(1);

/// Settings every connection gets, on both drivers:
/// - write-ahead log with `synchronous = FULL`: a commit is on disk before Sealpost
///   acknowledges anything that depends on it;
/// - foreign keys enforced;
/// - `secure_delete`: deleted content is overwritten, not left in free pages;
/// - `temp_store = memory`: savepoint journals and sorts stay in memory (as files they would
///   hold copies of database pages in /var/tmp, outside the data directory).
const PRAGMAS: &[(&str, &str)] = &[
    ("synchronous", "FULL"),
    ("foreign_keys", "ON"),
    ("secure_delete", "ON"),
    ("temp_store", "MEMORY"),
];

/// The database file a `sqlite://` URL names.
pub(super) fn path_of(url: &str) -> Result<PathBuf, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("database.url: {e}")))?;
    Ok(opts.get_filename().to_owned())
}

/// Opens the pool for reads (and the migrations), creating the file (0600) if needed.
pub(super) async fn open_pool(url: &str) -> Result<SqlitePool, StoreError> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(|e| StoreError::Invalid(format!("database.url: {e}")))?;
    prepare_file(opts.get_filename())?;
    let mut opts = opts
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(BUSY_TIMEOUT);
    for (name, value) in PRAGMAS {
        opts = opts.pragma(*name, *value);
    }
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(opts)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// A connection for the writer thread, with the same settings as the pool's.
pub(super) fn open_writer(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "the database refused write-ahead logging (journal mode {mode})"
        )));
    }
    for (name, value) in PRAGMAS {
        conn.execute_batch(&format!("PRAGMA {name} = {value};"))?;
    }
    Ok(conn)
}

/// Creates the database file's directory (0700) and the file itself (0600) before SQLite does,
/// because SQLite would create it with the process umask.
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    let err = |e: std::io::Error| {
        StoreError::Unavailable(format!(
            "cannot prepare the database file {}: {e}",
            path.display()
        ))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::files::ensure_private_dir(dir).map_err(err)?;
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
