//! The audit trail: every event, in one place. An event holds ids, counts and reasons, never
//! content; the ones webhooks subscribe to are queued for delivery in the same transaction.

use super::webhooks;
use crate::domain::ThreadId;
use crate::domain::webhook::WebhookEvent;
use crate::store::StoreError;
use rusqlite::{Connection, params};

/// An audit event. `detail` holds ids, counts and reasons, never content.
pub(crate) fn event(
    conn: &Connection,
    thread: Option<ThreadId>,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at, thread_id, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now, thread.map(|t| t.0), kind, detail.to_string()])?;
    if let Some(public) = WebhookEvent::of_audit(kind) {
        let event_id = conn.last_insert_rowid();
        webhooks::fan_out(conn, event_id, public, kind, thread, &detail, now)?;
    }
    Ok(())
}
