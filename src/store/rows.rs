//! Rows as a backend reads them: plain columns, content still sealed. The facade opens them
//! with the thread's key (see [`super::sealing`]); no backend ever holds content in clear.

use std::collections::HashMap;

use sqlx::FromRow;

use super::StoreError;
use crate::crypto::WrappedKey;
use crate::domain::ThreadId;

#[derive(FromRow)]
pub(crate) struct ThreadRow {
    pub id: i64,
    pub mode: String,
    pub status: String,
    pub key_id: i64,
    pub wrapped_key: Vec<u8>,
    pub subject: Vec<u8>,
    pub created_at: i64,
    pub last_activity_at: i64,
    /// Creation order (schema version 9).
    pub seq: Option<i64>,
    /// Read together by several people outside the practice, on purpose (schema version 14).
    pub shared: bool,
}

impl ThreadRow {
    pub fn thread(&self) -> ThreadId {
        ThreadId(self.id)
    }

    pub fn wrapped(&self) -> Result<WrappedKey, StoreError> {
        let key_id = u16::try_from(self.key_id).map_err(|_| {
            StoreError::Corrupt(format!(
                "key id {} of thread {}",
                self.key_id,
                self.thread()
            ))
        })?;
        Ok(WrappedKey {
            key_id,
            sealed: self.wrapped_key.clone(),
        })
    }
}

/// A thread with the number of its participants and messages (the thread list).
#[derive(FromRow)]
pub(crate) struct ThreadCountsRow {
    #[sqlx(flatten)]
    pub thread: ThreadRow,
    pub participants: i64,
    pub messages: i64,
    /// Messages held for review that name this thread, not yet decided.
    pub held: i64,
}

#[derive(FromRow)]
pub(crate) struct ParticipantRow {
    pub id: i64,
    pub thread_id: i64,
    pub address: String,
    pub display_name_sealed: Option<Vec<u8>>,
    pub role: String,
    pub revoked_at: Option<i64>,
    /// The person's choice about convenience mode ('yes', 'no'), if recorded.
    pub convenience: Option<String>,
    /// When they archived the conversation for themselves.
    pub archived_at: Option<i64>,
}

/// A message with its author's address and sealed name.
#[derive(FromRow)]
pub(crate) struct MessageRow {
    pub id: i64,
    pub author_id: i64,
    pub address: String,
    pub display_name_sealed: Option<Vec<u8>>,
    pub body: Vec<u8>,
    pub via: String,
    pub created_at: i64,
    pub seq: i64,
    pub auth: Option<String>,
    pub answers_id: Option<i64>,
}

/// A message its author took back: what is left of it (no body).
#[derive(FromRow)]
pub(crate) struct WithdrawnRow {
    pub id: i64,
    pub author_id: i64,
    pub address: String,
    pub display_name_sealed: Option<Vec<u8>>,
    pub created_at: i64,
    pub cancelled_at: i64,
    pub answers_id: Option<i64>,
}

#[derive(FromRow)]
pub(crate) struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub thread_id: i64,
    pub message_id: Option<i64>,
    pub participant_id: i64,
    pub recipient: String,
    pub mode: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub email_message_id: Option<String>,
    pub relay_reply: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub tls: Option<String>,
}

#[derive(FromRow)]
pub(crate) struct PersonRow {
    pub id: i64,
    pub address: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub convenience: Option<String>,
    pub convenience_at: Option<i64>,
    pub convenience_text: Option<String>,
    pub convenience_by: Option<String>,
    pub kind: String,
    pub title: Option<String>,
    pub practice: Option<String>,
    pub notifications: String,
    pub status: String,
    pub key_id: Option<i64>,
    pub wrapped_key: Option<Vec<u8>>,
    pub name_sealed: Option<Vec<u8>>,
    pub birth_date_sealed: Option<Vec<u8>>,
    pub mobile_sealed: Option<Vec<u8>>,
    /// Failed identity checks in a row (attempts reserved and not given back).
    pub failed_checks: i64,
    pub locked_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub lock_count: i64,
}

impl PersonRow {
    /// Where the person stands with the web view's identity check.
    pub fn standing(&self) -> crate::domain::lockout::Standing {
        crate::domain::lockout::Standing {
            failed: u32::try_from(self.failed_checks).unwrap_or(u32::MAX),
            locked: (self.status == "locked")
                .then(|| (self.locked_at.unwrap_or(self.updated_at), self.locked_until)),
            locks: u32::try_from(self.lock_count).unwrap_or(u32::MAX),
        }
    }
}

/// Where a token (or a notification) points: the participant and their thread's state.
#[derive(FromRow)]
pub(crate) struct TargetRow {
    /// The person's convenience consent (`yes`/`no`), when they have a directory entry.
    pub convenience: Option<String>,
    pub id: i64,
    pub address: String,
    pub role: String,
    pub revoked_at: Option<i64>,
    pub thread_id: i64,
    pub mode: String,
    pub status: String,
}

#[derive(FromRow)]
pub(crate) struct HeldRow {
    pub id: i64,
    pub received_at: i64,
    pub door: String,
    pub reason: String,
    pub thread_id: Option<i64>,
    pub participant_id: Option<i64>,
    pub header_message_id: Option<String>,
    pub size: i64,
    pub key_id: i64,
    pub wrapped_key: Option<Vec<u8>>,
    pub envelope: Option<Vec<u8>>,
    pub raw: Option<Vec<u8>>,
    pub status: String,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub auth: Option<String>,
}

/// A stored word (mode, role, status…) parsed, or the row is corrupt.
pub(crate) fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, StoreError> {
    v.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected {what} '{v}'")))
}

/// A thread's rows: the thread, its participants, its messages, what is left of the messages
/// taken back, and how many held messages name it.
pub(crate) type WholeThread = (
    ThreadRow,
    Vec<ParticipantRow>,
    Vec<MessageRow>,
    Vec<WithdrawnRow>,
    i64,
);

/// What a backend reads for a claimed batch of notifications.
pub(crate) struct DeliveryRows {
    pub outbox: HashMap<i64, OutboxRow>,
    pub recipients: Vec<ParticipantRow>,
    /// Threads with convenience notifications in the batch, and for each the messages of the
    /// announced messages' windows, in order.
    pub threads: Vec<(ThreadRow, Vec<MessageRow>)>,
}

/// Per notification its (participant, order); per (thread, participant) its earlier
/// notifications' (order, email Message-ID).
pub(crate) type EarlierIds = (
    HashMap<i64, (i64, i64)>,
    HashMap<(i64, i64), Vec<(i64, String)>>,
);
