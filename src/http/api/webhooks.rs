//! `/v1/webhooks`: subscriptions to events and what became of their deliveries. Admin keys
//! only (see `authenticate`): a subscription decides where the practice's events go.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery, ApiState};
use crate::clock;
use crate::domain::WebhookId;
use crate::domain::webhook::WebhookEvent;
use crate::http::problem::Problem;
use crate::store::webhooks::{
    DeliveryFilter, DeliveryView, WebhookView, delivery_id, parse_delivery_id,
};

/// A subscription (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct Webhook {
    pub webhook_id: String,
    pub url: String,
    pub description: String,
    /// The event types it receives.
    pub events: Vec<String>,
    pub created_at: String,
    /// Set once it was removed; nothing is delivered to it any more.
    pub removed_at: Option<String>,
}

impl From<WebhookView> for Webhook {
    fn from(w: WebhookView) -> Webhook {
        Webhook {
            webhook_id: w.id.to_string(),
            url: w.url,
            description: w.description,
            events: w.events.iter().map(|e| e.as_str().to_owned()).collect(),
            created_at: clock::rfc3339(w.created_at),
            removed_at: w.removed_at.map(clock::rfc3339),
        }
    }
}

/// A new subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookRequest {
    /// https, or http to loopback.
    #[schema(example = "https://portal.example/hooks/sealpost")]
    pub url: String,
    /// Event types (message.filed, notification.status, inbound.rejected, inbound.ignored,
    /// inbound.held, held.decided, thread.created, thread.closed, thread.reopened,
    /// participant.added, participant.removed, person.updated, person.removed), or ["*"].
    #[schema(min_items = 1)]
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// A subscription as made: the only answer that shows its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewWebhookResponse {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// `whsec_…`: check each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// One delivery of one event to one subscription.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    /// The `webhook-id` header it is sent with (the same on every retry).
    pub delivery_id: String,
    pub webhook_id: String,
    /// The audit event it announces (see /v1/events).
    pub event_id: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    /// pending, delivered, failed or cancelled.
    pub status: String,
    pub attempts: i64,
    pub created_at: String,
    /// When a pending delivery is tried next.
    pub next_attempt_at: Option<String>,
    pub last_attempt_at: Option<String>,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<String>,
}

impl From<DeliveryView> for Delivery {
    fn from(d: DeliveryView) -> Delivery {
        Delivery {
            delivery_id: delivery_id(d.id),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id,
            event_type: d.event_type,
            next_attempt_at: (d.status == "pending").then(|| clock::rfc3339(d.next_attempt_at)),
            status: d.status,
            attempts: d.attempts,
            created_at: clock::rfc3339(d.created_at),
            last_attempt_at: d.last_attempt_at.map(clock::rfc3339),
            last_status: d.last_status,
            last_error: d.last_error,
            delivered_at: d.delivered_at.map(clock::rfc3339),
        }
    }
}

/// A page of deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    pub items: Vec<Delivery>,
    /// Pass as `before` for the next page; null on the last one.
    pub next_before: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct DeliveriesQuery {
    /// pending, delivered, failed or cancelled.
    pub status: Option<String>,
    /// From a previous page's next_before.
    pub before: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn webhook_id(text: &str) -> Result<WebhookId, Problem> {
    text.parse()
        .map_err(|_| Problem::not_found(format!("no webhook {text}")))
}

/// Every subscription, newest first (removed ones too).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<Webhook>), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json")))]
pub async fn list(State(state): State<ApiState>) -> Result<axum::Json<Vec<Webhook>>, Problem> {
    Ok(axum::Json(
        state
            .store
            .webhooks()
            .await?
            .into_iter()
            .map(Webhook::from)
            .collect(),
    ))
}

/// Subscribe a URL to event types. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = NewWebhookRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: the same request with the same key within 24 hours gets the first answer again")),
    responses((status = 201, body = NewWebhookResponse), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<NewWebhookRequest>,
) -> Result<impl IntoResponse, Problem> {
    let url = state
        .webhook_targets
        .check_url(&req.url)
        .map_err(|e| Problem::invalid("url", e))?;
    let events = WebhookEvent::parse_list(&req.events.join(","))
        .map_err(|e| Problem::invalid("events", e.to_string()))?;
    if events.is_empty() {
        return Err(Problem::invalid(
            "events",
            "name at least one event type, or \"*\"",
        ));
    }
    let description = match req.description.as_deref() {
        Some(d) => crate::domain::person::text("description", d)
            .map_err(|e| Problem::invalid("description", e))?
            .unwrap_or_default(),
        None => String::new(),
    };
    let made = state
        .store
        .create_webhook(url.as_str(), &events, &description)
        .await?;
    let view = state.store.webhook(made.id).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(NewWebhookResponse {
            webhook: view.into(),
            secret: made.secret,
        }),
    ))
}

/// One subscription.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Webhook), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Webhook>, Problem> {
    let view = state.store.webhook(webhook_id(&id)?).await?;
    Ok(axum::Json(view.into()))
}

/// Remove a subscription: nothing more is delivered to it; pending deliveries are cancelled.
#[utoipa::path(delete, path = "/v1/webhooks/{webhook_id}", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 204), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    state.store.remove_webhook(webhook_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A subscription's deliveries, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/webhooks/{webhook_id}/deliveries", tag = "webhooks",
    params(("webhook_id" = String, Path, description = "16 hexadecimal digits"), DeliveriesQuery),
    responses((status = 200, body = DeliveryPage), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn deliveries(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<axum::Json<DeliveryPage>, Problem> {
    let webhook = webhook_id(&id)?;
    state.store.webhook(webhook).await?;
    if let Some(s) = q.status.as_deref()
        && !["pending", "delivered", "failed", "cancelled"].contains(&s)
    {
        return Err(Problem::invalid(
            "status",
            format!("'{s}': expected pending, delivered, failed or cancelled"),
        ));
    }
    let before = q
        .before
        .as_deref()
        .map(|b| {
            parse_delivery_id(b)
                .ok_or_else(|| Problem::invalid("before", "not a delivery id this API gave"))
        })
        .transpose()?;
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=500) => n,
        Some(n) => return Err(Problem::invalid("limit", format!("{n}: expected 1 to 500"))),
    };
    let mut items = state
        .store
        .webhook_deliveries(&DeliveryFilter {
            webhook: Some(webhook),
            status: q.status,
            before,
            limit: limit + 1,
        })
        .await?;
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_before = more
        .then(|| items.last().map(|d| delivery_id(d.id)))
        .flatten();
    Ok(axum::Json(DeliveryPage {
        items: items.into_iter().map(Delivery::from).collect(),
        next_before,
    }))
}
