//! The audit trail and the inbound ledger as feeds: read in id order from a point a client
//! remembers, never content.

use super::{Store, StoreError};

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    /// Increasing: the next page starts after the last one seen.
    pub id: i64,
    pub at: i64,
    pub thread_id: Option<i64>,
    pub kind: String,
    /// JSON with ids, counts and reasons.
    pub detail: String,
}

/// One decided inbound message: what arrived and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecord {
    pub id: i64,
    pub received_at: i64,
    pub door: String,
    pub thread_id: Option<i64>,
    pub outcome: String,
    pub reason: Option<String>,
    pub filed_message_id: Option<i64>,
}

impl Store {
    /// Events after `after`, oldest first, at most `limit`.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self.backend().events_after(after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|(id, at, thread_id, kind, detail)| EventRecord {
                id,
                at,
                thread_id,
                kind,
                detail,
            })
            .collect())
    }

    /// Inbound ledger entries received at or after `since`, newest first, at most `limit`.
    pub async fn inbound_since(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Vec<InboundRecord>, StoreError> {
        let rows = self.backend().inbound_since(since, limit).await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, received_at, door, thread_id, outcome, reason, filed_message_id)| {
                    InboundRecord {
                        id,
                        received_at,
                        door,
                        thread_id,
                        outcome,
                        reason,
                        filed_message_id,
                    }
                },
            )
            .collect())
    }
}

/// id, received_at, door, thread_id, outcome, reason, filed_message_id.
pub(crate) type InboundRow = (
    i64,
    i64,
    String,
    Option<i64>,
    String,
    Option<String>,
    Option<i64>,
);
