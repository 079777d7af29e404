//! `GET /metrics` (Prometheus) and the middleware that counts API requests.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::DeliveryStatus;
use crate::metrics::{count, labels, metrics, observe};
use crate::store::Store;

/// The metrics in the text exposition format, the stored counts read first.
pub async fn scrape(State(store): State<Store>) -> Response {
    let m = metrics();
    match store.status_counts().await {
        Ok(rows) => {
            // Every status of the vocabulary is shown, at 0 when there is none, so a rate
            // or an alert on a status works before the first row has it.
            for s in DeliveryStatus::ALL {
                m.outbox
                    .get_or_create(&labels([("status", s.as_str())]))
                    .set(0);
            }
            for s in ["pending", "delivered", "failed", "cancelled"] {
                m.webhook_deliveries
                    .get_or_create(&labels([("status", s)]))
                    .set(0);
            }
            m.held.set(0);
            for (table, status, n) in rows {
                let family = match table.as_str() {
                    "outbox" => &m.outbox,
                    "webhook" => &m.webhook_deliveries,
                    _ => {
                        if status == "held" {
                            m.held.set(n);
                        }
                        continue;
                    }
                };
                family.get_or_create(&labels([("status", &status)])).set(n);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read stored counts for /metrics"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

/// Counts every request by route template (never the concrete path: it holds addresses and
/// ids), method and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let m = metrics();
    let status = response.status().as_u16().to_string();
    count(
        &m.api_requests,
        [("route", &route), ("method", &method), ("status", &status)],
    );
    observe(
        &m.api_latency,
        [("route", &route), ("method", &method)],
        started.elapsed(),
    );
    response
}
