//! `/v1/events` (the audit trail as a feed) and `/v1/inbound` (what arrived by email and what
//! became of it). Ids, outcomes and reasons only: never content.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiQuery, ApiState};
use crate::clock;
use crate::http::problem::Problem;

/// One event of the audit trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct Event {
    /// Increasing; pass the last one seen as `after`.
    pub id: i64,
    pub at: String,
    pub thread_id: Option<String>,
    /// thread.created, message.posted, thread.closed, person.consent, …
    pub kind: String,
    /// Ids, counts and reasons.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// One inbound message and its outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundEntry {
    pub id: String,
    pub received_at: String,
    /// smtp or imap.
    pub door: String,
    pub thread_id: Option<String>,
    /// filed, duplicate, held, rejected, …
    pub outcome: String,
    pub reason: Option<String>,
    pub message_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Only events after this id (0: from the start).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InboundQuery {
    /// Only entries received at or after this time (RFC 3339).
    pub since: Option<String>,
    /// At most this many, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn limit(value: Option<i64>) -> Result<i64, Problem> {
    match value {
        None => Ok(100),
        Some(n @ 1..=500) => Ok(n),
        Some(n) => Err(Problem::invalid("limit", format!("{n}: expected 1 to 500"))),
    }
}

fn hex(id: i64) -> String {
    format!("{id:016x}")
}

/// The audit trail from a point on, oldest first.
#[utoipa::path(get, path = "/v1/events", tag = "feeds", params(EventsQuery),
    responses((status = 200, body = Vec<Event>), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<axum::Json<Vec<Event>>, Problem> {
    let after = q.after.unwrap_or(0);
    if after < 0 {
        return Err(Problem::invalid("after", "expected an event id, 0 or more"));
    }
    let rows = state.store.events_after(after, limit(q.limit)?).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|e| Event {
                id: e.id,
                at: clock::rfc3339(e.at),
                thread_id: e.thread_id.map(hex),
                kind: e.kind,
                detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect(),
    ))
}

/// What arrived by email and what became of it, newest first.
#[utoipa::path(get, path = "/v1/inbound", tag = "feeds", params(InboundQuery),
    responses((status = 200, body = Vec<InboundEntry>), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn inbound(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<InboundQuery>,
) -> Result<axum::Json<Vec<InboundEntry>>, Problem> {
    let since = match q.since.as_deref() {
        None => 0,
        Some(t) => clock::parse_rfc3339(t)
            .ok_or_else(|| Problem::invalid("since", format!("'{t}' is not an RFC 3339 time")))?,
    };
    let rows = state.store.inbound_since(since, limit(q.limit)?).await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|r| InboundEntry {
                id: hex(r.id),
                received_at: clock::rfc3339(r.received_at),
                door: r.door,
                thread_id: r.thread_id.map(hex),
                outcome: r.outcome,
                reason: r.reason,
                message_id: r.filed_message_id.map(hex),
            })
            .collect(),
    ))
}
