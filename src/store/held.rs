//! Held mail: inbound messages that were not filed because they could not be handled safely —
//! processing failed, only a Message-ID linked them to a thread, nothing new was written, or
//! their structure was beyond any reply's — kept sealed until a person releases them into
//! their thread or rejects them.
//!
//! Each held message has a data key of its own, wrapped by the keyring's at-rest key: held
//! mail may belong to no thread (a message that could not be parsed names none). The rows are
//! written by the inbound commit ([`InboundAction::Hold`](super::InboundAction::Hold)); a
//! release is an inbound filing that also marks its held row released, in one transaction.

use super::model::{HeldEnvelope, HeldMessage, HeldSummary};
use super::ops::Op;
use super::rows::{HeldRow, parse};
use super::{Store, StoreError};
use crate::crypto::{Binding, DataKey, WrappedKey};
use crate::domain::{HeldStatus, ParticipantId, ThreadId};

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
            auth: self.auth.clone(),
        })
    }
}

impl Store {
    /// Held messages, newest first; only those with `status` when given.
    pub async fn held_list(
        &self,
        status: Option<HeldStatus>,
    ) -> Result<Vec<HeldSummary>, StoreError> {
        self.backend()
            .held_list(status)
            .await?
            .iter()
            .map(HeldRow::summary)
            .collect()
    }

    /// One held message with its envelope and bytes opened. A rejected message has neither.
    pub async fn held(&self, id: i64) -> Result<HeldMessage, StoreError> {
        let row = self.backend().held(id).await?;
        let summary = row.summary()?;
        let (envelope, raw) = match (&row.wrapped_key, &row.envelope, &row.raw) {
            (Some(wrapped), Some(envelope), Some(raw)) => {
                let key_id = u16::try_from(row.key_id)
                    .map_err(|_| StoreError::Corrupt(format!("key id of held message {id}")))?;
                let wrapped = WrappedKey {
                    key_id,
                    sealed: wrapped.clone(),
                };
                let unsealed = |e| StoreError::Corrupt(format!("held message {id:016x}: {e}"));
                let key = DataKey::unwrap_held(self.keyring(), id, &wrapped).map_err(unsealed)?;
                let envelope = key
                    .open(Binding::HeldEnvelope(id), envelope)
                    .map_err(unsealed)?;
                let envelope: HeldEnvelope = serde_json::from_slice(&envelope).map_err(|_| {
                    StoreError::Corrupt(format!("envelope of held message {id:016x}"))
                })?;
                let raw = key.open(Binding::HeldRaw(id), raw).map_err(unsealed)?;
                (envelope, raw)
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
        self.write(Op::RejectHeld {
            id,
            by: by.to_owned(),
        })
        .await
        .map(drop)
    }
}
