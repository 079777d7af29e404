//! The `/v1` API: the practice's portal, EHR or CRM drives Sealpost through it. Every route is
//! registered through utoipa's router, so the OpenAPI document (`/v1/openapi.json`) is made
//! from the same code that serves the routes.

mod feeds;
mod people;
mod threads;
mod webhooks;

/// The resources the API serves, which the command line prints too: one JSON shape per
/// resource, whichever door it is read through.
pub use people::Person;
pub use threads::{
    ConversationCreated, Notification, Participant, PostedResponse, Thread, ThreadItem,
};
pub use webhooks::{Delivery, NewWebhookResponse, Webhook};

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use tokio::sync::Notify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::Problem;
use crate::domain::{ApiKeyId, ApiScope, Mode};
use crate::store::Store;

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    /// Wakes the outbox worker after a post queued notifications.
    pub wake: Arc<Notify>,
    /// `policy.default_mode`, for threads created without a mode.
    pub default_mode: Mode,
    /// `api.max_body_bytes`.
    pub max_body_bytes: usize,
    /// `api.requests_per_minute`, per key.
    pub rate_limit: Arc<crate::http::rate_limit::RateLimit>,
    /// Where a subscription may send to (`webhooks.allow_plaintext`, `webhooks.allow_private`).
    pub webhook_targets: crate::domain::webhook::Targets,
    /// Set once every part of the daemon runs; cleared when it starts draining.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

/// The key a request was made with.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub key: ApiKeyId,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sealpost API",
        description = "Secure message threads bridged to email: people, threads, messages and their notifications.",
    ),
    modifiers(&BearerKeys),
    tags(
        (name = "people", description = "The practice's directory"),
        (name = "threads", description = "Secure message threads, their messages and notifications"),
        (name = "feeds", description = "The audit trail and the inbound ledger, never content"),
        (name = "webhooks", description = "Signed deliveries of events to the practice's systems (admin keys)"),
    )
)]
struct ApiDoc;

struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// Any request with a key may be over its rate (`api.requests_per_minute`): every operation
/// documents 429.
fn document_rate_limit(openapi: &mut utoipa::openapi::OpenApi) {
    let too_many = utoipa::openapi::ResponseBuilder::new()
        .description("Too many requests with this API key; see Retry-After")
        .content(
            "application/problem+json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
                .build(),
        )
        .build();
    for item in openapi.paths.paths.values_mut() {
        for op in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .entry("429".to_owned())
                .or_insert_with(|| too_many.clone().into());
        }
    }
}

/// The `/v1` routes with their OpenAPI document.
fn v1() -> (Router<ApiState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(people::list, people::create))
        .routes(routes!(people::get, people::update, people::remove))
        .routes(routes!(people::consent))
        .routes(routes!(people::unlock))
        .routes(routes!(people::passcode))
        .routes(routes!(threads::list, threads::create))
        .routes(routes!(threads::get))
        .routes(routes!(threads::messages, threads::post_message))
        .routes(routes!(threads::message))
        .routes(routes!(threads::add_participant))
        .routes(routes!(threads::notifications))
        .routes(routes!(threads::close))
        .routes(routes!(threads::reopen))
        .routes(routes!(threads::remove_participant))
        .routes(routes!(feeds::events))
        .routes(routes!(feeds::inbound))
        .routes(routes!(webhooks::list, webhooks::create))
        .routes(routes!(webhooks::get, webhooks::remove))
        .routes(routes!(webhooks::deliveries))
        .split_for_parts();
    document_rate_limit(&mut doc);
    (router, doc)
}

/// The OpenAPI document of the API (also served at `/v1/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    v1().1
}

/// The whole HTTP API: `/v1` behind API keys; `/v1/openapi.json`, `/healthz`, `/readyz` and
/// `/metrics` without (they tell counts and states, never content, ids or addresses).
pub fn router(state: ApiState, max_body_bytes: usize) -> Router {
    let (v1, doc) = v1();
    let doc = Arc::new(doc);
    // The key is checked first (the outer layer), then a POST's Idempotency-Key.
    let v1 = v1
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotent,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ));
    Router::new()
        .merge(v1)
        .route(
            "/v1/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|State(state): State<ApiState>| crate::http::metrics::scrape(State(state.store))),
        )
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "no-such-route", "No such route")
                .detail("see /v1/openapi.json for the routes there are")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(crate::http::metrics::track))
        .with_state(state)
}

/// Ready when every part of the daemon has started (its listeners bound, the keyring loaded,
/// the store open) and is not draining, and the database answers now.
async fn ready(State(state): State<ApiState>) -> Response {
    if !state.ready.load(std::sync::atomic::Ordering::Relaxed) {
        return Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Sealpost is starting or shutting down",
        )
        .into_response();
    }
    match state.store.ping().await {
        Ok(()) => "ready\n".into_response(),
        Err(_) => Problem::unavailable().into_response(),
    }
}

/// Checks the API key and its scope: reading needs `read`, anything else `write`, webhooks
/// `admin`.
async fn authenticate(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let key = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(key) = key else {
        return Problem::unauthorized().into_response();
    };
    let (id, scope) = match state.store.check_api_key(key).await {
        Ok(Some(found)) => found,
        Ok(None) => return Problem::unauthorized().into_response(),
        Err(e) => return Problem::from(e).into_response(),
    };
    // Webhooks decide where the practice's events go and hold signing secrets: like keys,
    // they are the administrator's.
    let needed = if request.uri().path().starts_with("/v1/webhooks") {
        ApiScope::Admin
    } else {
        match *request.method() {
            Method::GET | Method::HEAD => ApiScope::Read,
            _ => ApiScope::Write,
        }
    };
    if !scope.allows(needed) {
        return Problem::forbidden(needed.as_str()).into_response();
    }
    if let Err(wait) = state.rate_limit.take(id) {
        return Problem {
            retry_after: Some(wait),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests with this API key",
            )
            .detail(format!(
                "api.requests_per_minute is reached; retry in {wait} s"
            ))
        }
        .into_response();
    }
    request.extensions_mut().insert(Caller { key: id });
    next.run(request).await
}

/// The header a client sends to make a POST safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A POST with an `Idempotency-Key` is answered once: a retry of the same request (same key,
/// method, path and body) within 24 hours gets the first answer again, marked
/// `Idempotent-Replayed: true`; the same key for a different request is refused (422), and so
/// is one whose first request is still being answered (409). Answers with a 5xx status are
/// not kept: a retry may succeed.
///
/// Once its body has arrived, such a request is carried out to the end whatever the client
/// does: a client that drops the connection mid-request does not cancel it, so its key
/// resolves to the real outcome (done: the retry gets the answer) instead of staying "in
/// progress". A request whose process died meanwhile is "in progress" only for
/// [`crate::domain::idempotency::ABANDONED_AFTER_SECS`]; then it may be retried.
async fn idempotent(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(IDEMPOTENCY_KEY) {
        return next.run(request).await;
    }
    let max = state.max_body_bytes;
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is larger than api.max_body_bytes",
        )
        .into_response();
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    match tokio::spawn(answer_once(state, request, next)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "an idempotent request failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The body of [`idempotent`], run to its end on a task of its own.
async fn answer_once(state: ApiState, request: Request, next: Next) -> Response {
    use sha2::{Digest, Sha256};

    use crate::store::idempotency::Seen;

    let Some(key) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return Problem::invalid(
                "Idempotency-Key",
                "expected 1 to 255 visible ASCII characters",
            )
            .into_response();
        }
    };
    let Some(caller) = request.extensions().get::<Caller>().copied() else {
        return Problem::unauthorized().into_response();
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "The body is larger than api.max_body_bytes",
        )
        .into_response();
    };
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str().as_bytes());
    hash.update(b" ");
    hash.update(parts.uri.path().as_bytes());
    hash.update(b"\n");
    hash.update(&bytes);
    let fingerprint = hash.finalize().to_vec();
    match state
        .store
        .idempotency_begin(caller.key, &key, fingerprint)
        .await
    {
        Err(e) => Problem::from(e).into_response(),
        Ok(Seen::Mismatch) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "This Idempotency-Key was used for a different request",
        )
        .field("Idempotency-Key")
        .into_response(),
        Ok(Seen::InProgress) => Problem {
            retry_after: Some(1),
            ..Problem::conflict(
                "idempotency-in-progress",
                "the first request with this Idempotency-Key is still being answered",
            )
        }
        .into_response(),
        Ok(Seen::Answered { status, body }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let content_type = if status.is_success() {
                "application/json"
            } else {
                "application/problem+json"
            };
            (
                status,
                [
                    (axum::http::header::CONTENT_TYPE, content_type),
                    (
                        axum::http::HeaderName::from_static("idempotent-replayed"),
                        "true",
                    ),
                ],
                body,
            )
                .into_response()
        }
        Ok(Seen::New) => {
            let response = next
                .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await;
            let (parts, body) = response.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let keep =
                (!parts.status.is_server_error()).then(|| (parts.status.as_u16(), body.to_vec()));
            if let Err(e) = state.store.idempotency_finish(caller.key, &key, keep).await {
                tracing::warn!(error = %e, "cannot record the answer to an idempotent request");
            }
            Response::from_parts(parts, axum::body::Body::from(body))
        }
    }
}

/// A query string whose rejections are problems (400, naming what is wrong).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    "The query string has a parameter with an invalid value",
                )
                .detail(e.body_text())
            })
    }
}

/// A JSON body whose rejections are problems: 415 without a JSON content type, 400 for
/// malformed JSON, 422 naming the field for JSON of the wrong shape, 413 over the size limit.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Send JSON with Content-Type: application/json",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
            )
            .detail(e.body_text())),
            Err(JsonRejection::JsonDataError(e)) => Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-shape",
                "The JSON does not have the expected fields and types",
            )
            .detail(e.body_text())),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "The body is larger than api.max_body_bytes",
                ))
            }
            Err(e) => Err(Problem::new(
                e.status(),
                "bad-request",
                "The body cannot be read",
            )),
        }
    }
}
