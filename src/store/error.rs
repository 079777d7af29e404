//! Why a store operation failed, classified by cause, so that each caller can decide once:
//! retry later ([`StoreError::is_transient`]: SMTP 451, IMAP leaves the message), refuse for
//! good, or hold a message whose stored data can never be read. Messages carry ids and
//! addresses, never content and never key material.

use crate::crypto::SealError;
use crate::domain::{Address, ThreadId};

/// The cause of a failure, as callers act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// What was named does not exist.
    NotFound,
    /// It exists, but no longer takes this (a closed thread, a removed participant, a
    /// decision already made).
    Closed,
    /// The request itself is wrong (an empty body, a participant named twice).
    Invalid,
    /// The database cannot be used right now (busy, locked, out of disk, the writer stopped):
    /// the same operation may work later.
    Unavailable,
    /// Stored data cannot be read (a sealed value that does not open, a row that does not
    /// parse): trying again will not help.
    Corrupt,
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no thread {0}")]
    UnknownThread(ThreadId),
    #[error("{address} is not a participant of thread {thread}")]
    NotParticipant { thread: ThreadId, address: Address },
    #[error("no held message {0:016x}")]
    UnknownHeld(i64),
    #[error("thread {0} is closed")]
    ThreadClosed(ThreadId),
    #[error("the participant was removed from thread {0}")]
    Revoked(ThreadId),
    #[error("held message {0:016x} was already released or rejected")]
    HeldDecided(i64),
    #[error("{0} is not in the directory")]
    UnknownPerson(Address),
    #[error("{address} is a participant of {threads} thread(s); remove them from those first")]
    PersonInUse { address: Address, threads: i64 },
    #[error("{address} is already a participant of thread {thread}{}", if *removed { " (removed: a removed participant cannot be added back)" } else { "" })]
    AlreadyParticipant {
        thread: ThreadId,
        address: Address,
        removed: bool,
    },
    #[error("no webhook {0:016x}")]
    UnknownWebhook(i64),
    #[error("the message cannot be taken back: {0}")]
    CannotCancel(crate::domain::message::CancelRefusal),
    #[error("{0}")]
    WouldShare(crate::domain::conversation::AddRefusal),
    #[error("the person is locked out of the web view")]
    Locked { until: Option<i64> },
    #[error("{0}")]
    Invalid(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The class of this failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::UnknownThread(_)
            | StoreError::NotParticipant { .. }
            | StoreError::UnknownHeld(_)
            | StoreError::UnknownPerson(_)
            | StoreError::UnknownWebhook(_) => ErrorClass::NotFound,
            StoreError::ThreadClosed(_)
            | StoreError::Revoked(_)
            | StoreError::HeldDecided(_)
            | StoreError::PersonInUse { .. }
            | StoreError::CannotCancel(_)
            | StoreError::WouldShare(_)
            | StoreError::Locked { .. }
            | StoreError::AlreadyParticipant { .. } => ErrorClass::Closed,
            StoreError::Invalid(_) => ErrorClass::Invalid,
            StoreError::Unavailable(_) => ErrorClass::Unavailable,
            StoreError::Corrupt(_) => ErrorClass::Corrupt,
        }
    }

    /// Whether the same operation may succeed later (SMTP 451, not 5xx; IMAP: leave it).
    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Unavailable
    }

    /// A sealed value of `thread` did not open.
    pub(crate) fn unsealed(thread: ThreadId, source: SealError) -> StoreError {
        StoreError::Corrupt(format!("data of thread {thread}: {source}"))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        use sqlx::Error as E;
        match e {
            E::Database(db) => {
                let code = db.code().unwrap_or_default();
                match database_code_class(&code) {
                    ErrorClass::Unavailable => StoreError::Unavailable(db.message().to_owned()),
                    ErrorClass::Invalid => StoreError::Invalid(db.message().to_owned()),
                    _ => StoreError::Corrupt(db.message().to_owned()),
                }
            }
            E::RowNotFound
            | E::TypeNotFound { .. }
            | E::ColumnIndexOutOfBounds { .. }
            | E::ColumnNotFound(_)
            | E::ColumnDecode { .. }
            | E::Decode(_)
            | E::Encode(_) => StoreError::Corrupt(e.to_string()),
            E::Configuration(_) => StoreError::Invalid(e.to_string()),
            E::Migrate(m) => StoreError::Invalid(format!("database migration failed: {m}")),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> StoreError {
        StoreError::Invalid(format!("database migration failed: {e}"))
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => {
                match sqlite_code_class(f.extended_code & 0xff) {
                    ErrorClass::Unavailable => StoreError::Unavailable(e.to_string()),
                    ErrorClass::Invalid => StoreError::Invalid(e.to_string()),
                    _ => StoreError::Corrupt(e.to_string()),
                }
            }
            _ => StoreError::Corrupt(e.to_string()),
        }
    }
}

/// The class of a database error code as sqlx reports it: a SQLSTATE (PostgreSQL and the SQL
/// standard) has five characters, some of them digits only ("40001"); SQLite's extended result
/// codes have at most four digits.
fn database_code_class(code: &str) -> ErrorClass {
    if code.len() == 5 {
        return sqlstate_class(code);
    }
    sqlite_code_class(code.parse().unwrap_or(0))
}

/// The class of a SQLSTATE. A serialization failure or a deadlock means "run it again":
/// transient, like a lost connection or a server shutting down; never corrupt data.
fn sqlstate_class(state: &str) -> ErrorClass {
    match state {
        // serialization_failure, deadlock_detected, lock_not_available
        "40001" | "40P01" | "55P03" => ErrorClass::Unavailable,
        // Integrity constraints (23), data exceptions (22): the request was wrong.
        s if s.starts_with("23") || s.starts_with("22") => ErrorClass::Invalid,
        // Connection (08), transaction rollback (40), insufficient resources (53), program
        // limits (54), operator intervention (57: shutdown, cancel), system errors (58).
        s if ["08", "40", "53", "54", "57", "58"]
            .iter()
            .any(|c| s.starts_with(c)) =>
        {
            ErrorClass::Unavailable
        }
        _ => ErrorClass::Corrupt,
    }
}

/// The class of a SQLite result code (its primary code, the low byte).
fn sqlite_code_class(code: i32) -> ErrorClass {
    match code & 0xff {
        // BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
        5 | 6 | 7 | 8 | 10 | 13 | 14 | 15 => ErrorClass::Unavailable,
        // CONSTRAINT, MISMATCH, RANGE, TOOBIG
        19 | 20 | 25 | 18 => ErrorClass::Invalid,
        _ => ErrorClass::Corrupt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(StoreError::Unavailable("busy".into()).is_transient());
        assert!(!StoreError::Corrupt("x".into()).is_transient());
        assert_eq!(sqlite_code_class(5), ErrorClass::Unavailable);
        assert_eq!(
            sqlite_code_class(261),
            ErrorClass::Unavailable,
            "BUSY_RECOVERY"
        );
        assert_eq!(
            sqlite_code_class(2067),
            ErrorClass::Invalid,
            "CONSTRAINT_UNIQUE"
        );
        assert_eq!(sqlite_code_class(11), ErrorClass::Corrupt, "CORRUPT");
        assert_eq!(database_code_class("2067"), ErrorClass::Invalid);
    }

    #[test]
    fn a_conflict_between_writers_is_transient_never_corrupt() {
        for state in ["40001", "40P01", "55P03", "08006", "57P01", "53300"] {
            assert_eq!(
                database_code_class(state),
                ErrorClass::Unavailable,
                "{state}"
            );
        }
        assert_eq!(
            database_code_class("23505"),
            ErrorClass::Invalid,
            "unique_violation"
        );
        assert_eq!(
            database_code_class("22001"),
            ErrorClass::Invalid,
            "string too long"
        );
        assert_eq!(
            database_code_class("42P01"),
            ErrorClass::Corrupt,
            "undefined table"
        );
        assert_eq!(
            StoreError::ThreadClosed(ThreadId(1)).class(),
            ErrorClass::Closed
        );
    }
}
