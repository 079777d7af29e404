//! The audit trail: every event, in one place. An event holds ids, counts and reasons, never
//! content; the ones webhooks subscribe to are queued for delivery in the same transaction.

use super::webhooks;
use crate::domain::ThreadId;
use crate::domain::webhook::WebhookEvent;
use crate::store::StoreError;
use crate::store::sql::{Sql, args};

/// An audit event. `detail` holds ids, counts and reasons, never content.
pub(crate) fn event(
    conn: &dyn Sql,
    thread: Option<ThreadId>,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    let detail_text = detail.to_string();
    let id = conn
        .row(
            "INSERT INTO events (at, thread_id, kind, detail) VALUES ($1, $2, $3, $4)
             RETURNING id",
            args![now, thread.map(|t| t.0), kind, &detail_text],
        )?
        .ok_or_else(|| StoreError::Corrupt("an event was not written".into()))?
        .int(0)?;
    if let Some(public) = WebhookEvent::of_audit(kind) {
        webhooks::fan_out(conn, id, public, kind, thread, &detail, now)?;
    }
    Ok(())
}
