//! A consistent copy of the live database through SQLite's online backup API, and what a
//! copy holds (for its manifest).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// Copies the database at `from` (in use by a running daemon or not) to a new file `to`.
///
/// The copy is made in one step, inside one read transaction of the source: it is the
/// database as it was at one instant, every committed reply in it or none of a transaction.
/// In WAL mode the daemon keeps writing meanwhile; it is never blocked.
pub(crate) fn copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    let source = Connection::open_with_flags(
        from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    source.busy_timeout(Duration::from_secs(30))?;
    let mut target = Connection::open(to)?;
    {
        use rusqlite::backup::StepResult;
        let backup = rusqlite::backup::Backup::new(&source, &mut target)?;
        // -1: every page in one step (a restart is then impossible: nothing can change the
        // source between steps). Busy or locked answers are waited out, for a while.
        let mut waits = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ if waits < 600 => {
                    waits += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(StoreError::Unavailable(
                        "the database stayed locked for 30 s; try the backup again".into(),
                    ));
                }
            }
        }
    }
    // A single file, self-contained: no WAL beside it.
    target.pragma_update(None, "journal_mode", "DELETE")?;
    Ok(())
}

/// What a copy holds: its schema version and how many rows of each kind, for the manifest.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Contents {
    pub schema_version: i64,
    pub threads: i64,
    pub messages: i64,
    pub participants: i64,
    pub people: i64,
    pub notifications: i64,
    pub held: i64,
    /// The keyring keys the copy's data is wrapped under (all must be in the keyring that
    /// opens it).
    pub key_ids: Vec<i64>,
}

/// Counts what the database file at `path` holds (opened read-only).
pub(crate) fn contents(path: &Path) -> Result<Contents, StoreError> {
    let c = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let count = |sql: &str| -> Result<i64, StoreError> { Ok(c.query_row(sql, [], |r| r.get(0))?) };
    let mut key_ids: Vec<i64> = c
        .prepare(
            "SELECT key_id FROM threads
             UNION SELECT key_id FROM people WHERE key_id IS NOT NULL
             UNION SELECT key_id FROM held
             UNION SELECT key_id FROM webhooks
             ORDER BY 1",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    key_ids.dedup();
    Ok(Contents {
        schema_version: count("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations")?,
        threads: count("SELECT COUNT(*) FROM threads")?,
        messages: count("SELECT COUNT(*) FROM messages WHERE cancelled_at IS NULL")?,
        participants: count("SELECT COUNT(*) FROM participants")?,
        people: count("SELECT COUNT(*) FROM people")?,
        notifications: count("SELECT COUNT(*) FROM outbox")?,
        held: count("SELECT COUNT(*) FROM held")?,
        key_ids,
    })
}

/// The highest migration this build knows.
pub(crate) fn latest_schema() -> i64 {
    super::MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}
