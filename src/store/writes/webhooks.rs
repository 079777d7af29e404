//! The writes of webhook subscriptions and deliveries (run by the writer thread, inside the
//! batch's transaction like every other write).

use super::events::event;
use crate::store::sql::{Sql, args};

use crate::domain::ThreadId;
use crate::domain::webhook::{self, WebhookEvent};
use crate::store::StoreError;
use crate::store::webhooks::{AttemptOutcome, NewWebhookRow, WebhookAttempt};

/// Queues one delivery of an event to every live subscription that asked for its type, in the
/// transaction that records the event.
pub(crate) fn fan_out(
    conn: &dyn Sql,
    event_id: i64,
    public: WebhookEvent,
    audit_kind: &str,
    thread: Option<ThreadId>,
    detail: &serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    // Most events have no subscriber: do not build a payload for nobody.
    let wanted = conn.exists(
        "SELECT 1 FROM webhook_events e JOIN webhooks w ON w.id = e.webhook_id
         WHERE e.event_type = $1 AND w.removed_at IS NULL",
        args![public.as_str()],
    )?;
    if !wanted {
        return Ok(());
    }
    let payload = webhook::payload(public, audit_kind, thread, detail, now);
    conn.exec(
        "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, payload, created_at,
                                         next_attempt_at)
         SELECT e.webhook_id, $1, $2, $3, $4, $4
         FROM webhook_events e JOIN webhooks w ON w.id = e.webhook_id
         WHERE e.event_type = $2 AND w.removed_at IS NULL",
        args![event_id, public.as_str(), &payload, now],
    )?;
    Ok(())
}

pub(crate) fn create(conn: &dyn Sql, w: &NewWebhookRow, now: i64) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO webhooks (id, url, description, key_id, wrapped_secret, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        args![
            w.id,
            &w.url,
            &w.description,
            i64::from(w.wrapped.key_id),
            &w.wrapped.sealed,
            now
        ],
    )?;
    for event in &w.events {
        conn.exec(
            "INSERT INTO webhook_events (event_type, webhook_id) VALUES ($1, $2)",
            args![event.as_str(), w.id],
        )?;
    }
    event(
        conn,
        None,
        "webhook.created",
        serde_json::json!({
            "webhook_id": format!("{:016x}", w.id),
            "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        }),
        now,
    )
}

/// Removes a subscription: nothing more is queued for it and what was pending is cancelled.
/// Returns how many pending deliveries were cancelled.
pub(crate) fn remove(conn: &dyn Sql, id: i64, now: i64) -> Result<u64, StoreError> {
    let removed = conn.exec(
        "UPDATE webhooks SET removed_at = $1 WHERE id = $2 AND removed_at IS NULL",
        args![now, id],
    )?;
    if removed == 0 {
        return Err(StoreError::UnknownWebhook(id));
    }
    let cancelled = conn.exec(
        "UPDATE webhook_deliveries SET status = 'cancelled', claimed_by = NULL,
                claimed_until = NULL
         WHERE webhook_id = $1 AND status = 'pending'",
        args![id],
    )?;
    event(
        conn,
        None,
        "webhook.removed",
        serde_json::json!({"webhook_id": format!("{id:016x}"), "deliveries_cancelled": cancelled}),
        now,
    )?;
    Ok(cancelled)
}

/// Records what became of attempts, releasing their claims.
pub(crate) fn record(conn: &dyn Sql, attempts: &[(i64, WebhookAttempt)]) -> Result<(), StoreError> {
    for (id, a) in attempts {
        let (status, next, delivered) = match a.outcome {
            AttemptOutcome::Delivered => ("delivered", None, Some(a.at)),
            AttemptOutcome::RetryAt(next) => ("pending", Some(next), None),
            AttemptOutcome::GaveUp => ("failed", None, None),
        };
        conn.exec(
            "UPDATE webhook_deliveries
             SET status = $1, attempts = attempts + 1, last_attempt_at = $2, last_status = $3,
                 last_error = $4, next_attempt_at = COALESCE($5, next_attempt_at),
                 delivered_at = $6, claimed_by = NULL, claimed_until = NULL
             WHERE id = $7 AND status = 'pending'",
            args![status, a.at, a.http_status, &a.error, next, delivered, *id],
        )?;
    }
    Ok(())
}
