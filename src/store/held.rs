//! Held mail: inbound messages that were not filed because they could not be handled safely —
//! processing failed, only a Message-ID linked them to a thread, or nothing new was written —
//! kept sealed until a person releases them into their thread or rejects them.
//!
//! Each held message has a data key of its own, wrapped by the keyring's at-rest key: held
//! mail may belong to no thread (a message that could not be parsed names none). The rows are
//! written by the inbound commit ([`InboundAction::Hold`](super::InboundAction::Hold)); a
//! release is an inbound filing that also marks its held row released, in one transaction.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;

use super::threads::parse;
use super::{Store, StoreError};
use crate::clock;
use crate::crypto::{Binding, DataKey, Keyring, WrappedKey};
use crate::domain::{HeldStatus, HoldReason, ParticipantId, ThreadId, Via};

/// What the message came with besides its bytes, as the door saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEnvelope {
    pub mail_from: Option<String>,
    pub null_sender: bool,
    pub rcpt_to: Vec<String>,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
}

/// A message to hold, sealed and ready to commit.
#[derive(Debug, Clone)]
pub struct SealedHeld {
    wrapped: WrappedKey,
    envelope: Vec<u8>,
    raw: Vec<u8>,
    size: i64,
    pub reason: HoldReason,
    pub participant: Option<ParticipantId>,
}

impl SealedHeld {
    /// Seals `raw` and its envelope for the ledger row `id` under a fresh key.
    pub fn seal(
        keyring: &Keyring,
        id: i64,
        envelope: &HeldEnvelope,
        raw: &[u8],
        reason: HoldReason,
        participant: Option<ParticipantId>,
    ) -> SealedHeld {
        let key = DataKey::generate();
        let envelope = serde_json::to_vec(envelope).expect("an envelope always serialises");
        SealedHeld {
            wrapped: key.wrap_held(keyring, id),
            envelope: key.seal(Binding::HeldEnvelope(id), &envelope),
            raw: key.seal(Binding::HeldRaw(id), raw),
            size: raw.len() as i64,
            reason,
            participant,
        }
    }

    pub(super) fn columns(&self) -> (i64, &[u8], &[u8], &[u8], i64) {
        (
            i64::from(self.wrapped.key_id),
            &self.wrapped.sealed,
            &self.envelope,
            &self.raw,
            self.size,
        )
    }
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
}

#[derive(FromRow)]
struct HeldRow {
    id: i64,
    received_at: i64,
    door: String,
    reason: String,
    thread_id: Option<i64>,
    participant_id: Option<i64>,
    header_message_id: Option<String>,
    size: i64,
    key_id: i64,
    wrapped_key: Option<Vec<u8>>,
    envelope: Option<Vec<u8>>,
    raw: Option<Vec<u8>>,
    status: String,
    decided_at: Option<i64>,
    decided_by: Option<String>,
}

impl HeldRow {
    fn summary(&self) -> Result<HeldSummary, StoreError> {
        Ok(HeldSummary {
            id: self.id,
            received_at: self.received_at,
            door: parse("door", &self.door)?,
            reason: parse("hold reason", &self.reason)?,
            status: parse("held status", &self.status)?,
            thread: self.thread_id.map(ThreadId),
            participant: self.participant_id.map(ParticipantId),
            size: self.size,
            decided_at: self.decided_at,
            decided_by: self.decided_by.clone(),
        })
    }
}

impl Store {
    /// Held messages, newest first; only those with `status` when given.
    pub async fn held_list(
        &self,
        status: Option<HeldStatus>,
    ) -> Result<Vec<HeldSummary>, StoreError> {
        let rows: Vec<HeldRow> = sqlx::query_as(
            "SELECT * FROM held WHERE ($1 IS NULL OR status = $1) ORDER BY received_at DESC, id",
        )
        .bind(status.map(HeldStatus::as_str))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(HeldRow::summary).collect()
    }

    /// One held message with its envelope and bytes opened. A rejected message has neither.
    pub async fn held(&self, id: i64) -> Result<HeldMessage, StoreError> {
        let row: HeldRow = sqlx::query_as("SELECT * FROM held WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::UnknownHeld(id))?;
        let summary = row.summary()?;
        let (envelope, raw) = match (&row.wrapped_key, &row.envelope, &row.raw) {
            (Some(wrapped), Some(envelope), Some(raw)) => {
                let key_id = u16::try_from(row.key_id)
                    .map_err(|_| StoreError::Corrupt(format!("key id of held message {id}")))?;
                let wrapped = WrappedKey {
                    key_id,
                    sealed: wrapped.clone(),
                };
                let unsealed = |e| StoreError::Corrupt(format!("held message {id}: {e}"));
                let key = DataKey::unwrap_held(self.keyring(), id, &wrapped).map_err(unsealed)?;
                let envelope = key
                    .open(Binding::HeldEnvelope(id), envelope)
                    .map_err(unsealed)?;
                let envelope: HeldEnvelope = serde_json::from_slice(&envelope)
                    .map_err(|_| StoreError::Corrupt(format!("envelope of held message {id}")))?;
                (
                    envelope,
                    key.open(Binding::HeldRaw(id), raw).map_err(unsealed)?,
                )
            }
            _ => (HeldEnvelope::default(), Vec::new()),
        };
        Ok(HeldMessage {
            summary,
            header_message_id: row.header_message_id,
            envelope,
            raw,
        })
    }

    /// Rejects a held message: it stays listed, for the audit trail, but its key, envelope and
    /// bytes are destroyed.
    pub async fn reject_held(&self, id: i64, by: &str) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE held SET status = 'rejected', decided_at = $1, decided_by = $2,
                    wrapped_key = NULL, envelope = NULL, raw = NULL
             WHERE id = $3 AND status = 'held'",
        )
        .bind(clock::now())
        .bind(by)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM held WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::HeldDecided(id),
                None => StoreError::UnknownHeld(id),
            });
        }
        let thread: Option<i64> = sqlx::query_scalar("SELECT thread_id FROM held WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        super::threads::event(
            &mut tx,
            thread.map(ThreadId),
            "held.rejected",
            serde_json::json!({"held_id": format!("{id:016x}"), "by": by}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
