//! Webhook subscriptions and their deliveries.

use crate::store::StoreError;

use super::Pool;

/// Every webhook subscription (id, url, description, events comma-separated, created_at,
/// removed_at), newest first.
pub(crate) async fn webhooks(
    pool: &Pool,
) -> Result<Vec<(i64, String, String, String, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.url, w.description,
                COALESCE((SELECT string_agg(event_type, ',' ORDER BY event_type) FROM webhook_events e
                          WHERE e.webhook_id = w.id), ''),
                w.created_at, w.removed_at
         FROM webhooks w ORDER BY w.created_at DESC, w.id",
    )
    .fetch_all(pool)
    .await?)
}

/// What sending one claimed delivery needs: (id, webhook_id, url, key_id, wrapped_secret,
/// payload, attempts, created_at).
#[allow(clippy::type_complexity)]
pub(crate) async fn due_delivery(
    pool: &Pool,
    id: i64,
) -> Result<Option<(i64, i64, String, i64, Vec<u8>, String, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.webhook_id, w.url, w.key_id, w.wrapped_secret, d.payload, d.attempts,
                d.created_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.id = $1 AND d.status = 'pending'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Webhook deliveries, newest first.
pub(crate) async fn webhook_deliveries(
    pool: &Pool,
    filter: &crate::store::webhooks::DeliveryFilter,
) -> Result<Vec<crate::store::webhooks::DeliveryView>, StoreError> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        i64,
        i64,
        String,
        String,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    )> = sqlx::query_as(
        "SELECT id, webhook_id, event_id, event_type, status, attempts, created_at,
                next_attempt_at, last_attempt_at, last_status, last_error, delivered_at
         FROM webhook_deliveries
         WHERE ($1 IS NULL OR webhook_id = $1) AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(filter.webhook.map(|w| w.0))
    .bind(filter.status.as_deref())
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::store::webhooks::DeliveryView {
            id: r.0,
            webhook_id: crate::domain::WebhookId(r.1),
            event_id: r.2,
            event_type: r.3,
            status: r.4,
            attempts: r.5,
            created_at: r.6,
            next_attempt_at: r.7,
            last_attempt_at: r.8,
            last_status: r.9,
            last_error: r.10,
            delivered_at: r.11,
        })
        .collect())
}
