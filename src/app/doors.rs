//! The HTTP doors' listeners and routes: the API's and the web view's, each with its state
//! built from the settings.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::warn;

use super::AppError;
use super::setup::{Caps, door, listen};
use crate::config::Settings;
use crate::crypto::Keyring;
use crate::net::proxies::TrustedProxies;
use crate::store::Store;

/// An HTTP listener (the API's, the web view's): its socket, its budgets and TLS (see
/// [`crate::http::door`]), and its routes.
pub(super) struct ApiListener {
    pub listener: TcpListener,
    pub door: crate::http::door::Door,
    pub router: axum::Router,
}

/// The API's listener, when `api.enabled`; `ready` is what `/readyz` answers.
pub(super) fn api(
    settings: &Settings,
    caps: &Caps,
    store: &Store,
    wake: &Arc<Notify>,
    ready: &Arc<AtomicBool>,
) -> Result<Option<ApiListener>, AppError> {
    if !settings.api.enabled {
        return Ok(None);
    }
    let api_tls = match (&settings.api.tls_cert, &settings.api.tls_key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::server_config(cert, key).map_err(AppError::ApiTls)?)
        }
        _ => None,
    };
    if api_tls.is_none() && !settings.api.listen.ip().is_loopback() {
        warn!(
            listen = %settings.api.listen,
            "api.allow_plaintext: the API serves plain HTTP beyond loopback; keys and \
             personal data must reach it only through a TLS proxy"
        );
    }
    {
        let listener = listen(settings.api.listen).map_err(|source| AppError::Listen {
            addr: settings.api.listen,
            source,
        })?;
        let state = crate::http::api::ApiState {
            store: store.clone(),
            wake: wake.clone(),
            default_mode: settings.policy.default_mode,
            max_body_bytes: settings.api.max_body_bytes,
            rate_limit: Arc::new(crate::http::rate_limit::RateLimit::new(
                settings.api.requests_per_minute,
            )),
            webhook_targets: settings.webhooks.targets(),
            ready: ready.clone(),
        };
        Ok(Some(ApiListener {
            listener,
            door: door(
                "api",
                settings,
                caps.api,
                settings.api.max_connections_per_ip,
                settings.api.max_body_bytes,
                api_tls,
            ),
            router: crate::http::api::router(state, settings.api.max_body_bytes),
        }))
    }
}

/// The web view's listener, when `web.enabled`.
pub(super) fn web(
    settings: &Settings,
    caps: &Caps,
    store: &Store,
    keyring: &Arc<Keyring>,
    wake: &Arc<Notify>,
) -> Result<Option<ApiListener>, AppError> {
    if !settings.web.enabled {
        return Ok(None);
    }
    {
        let tls = match (&settings.web.tls_cert, &settings.web.tls_key) {
            (Some(cert), Some(key)) => {
                Some(crate::tls::server_config(cert, key).map_err(AppError::WebTls)?)
            }
            _ => None,
        };
        if tls.is_none() && !settings.web.listen.ip().is_loopback() {
            warn!(
                listen = %settings.web.listen,
                "web.allow_plaintext: the web view serves plain HTTP beyond loopback; it must be reached only through a TLS proxy"
            );
        }
        let listener = listen(settings.web.listen).map_err(|source| AppError::Listen {
            addr: settings.web.listen,
            source,
        })?;
        let state = crate::http::web::WebState {
            store: store.clone(),
            keyring: keyring.clone(),
            wake: wake.clone(),
            organization: settings.general.organization.clone(),
            recognition_phrase: settings.general.recognition_phrase.clone(),
            contact: settings.general.contact.clone(),
            public_host: url::Url::parse(&settings.general.public_url)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| match u.port() {
                        Some(p) => format!("{h}:{p}"),
                        None => h.to_owned(),
                    })
                })
                .unwrap_or_default(),
            notice: settings.web.notice.clone(),
            billing_consent: settings.web.billing_consent,
            secure_cookies: settings.general.public_url.starts_with("https://"),
            verify: settings.web.verify,
            max_failures: settings.web.max_failures,
            session_idle: i64::try_from(settings.web.session_idle).unwrap_or(900),
            session_max: i64::try_from(settings.web.session_max).unwrap_or(43_200),
            token_ttl_days: settings.policy.token_ttl_days,
            code_after_secs: i64::from(settings.web.code_after_hours) * 3600,
            code_by_email: settings.sms.provider == crate::config::SmsProvider::Email,
            stylesheet: match &settings.web.stylesheet {
                None => crate::http::web::STYLESHEET.into(),
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|source| AppError::Stylesheet {
                        path: path.clone(),
                        source,
                    })?
                    .into(),
            },
            per_address: Arc::new(crate::http::rate_limit::RateLimit::new(
                settings.web.attempts_per_minute,
            )),
            per_person: Arc::new(crate::http::rate_limit::RateLimit::new(
                settings.web.attempts_per_minute,
            )),
            proxies: TrustedProxies::new(settings.web.trusted_proxies.clone()),
            new_per_person: Arc::new(crate::http::rate_limit::RateLimit::per_hour(
                settings.web.new_conversations_per_hour,
            )),
        };
        Ok(Some(ApiListener {
            listener,
            door: crate::http::door::Door {
                proxies: TrustedProxies::new(settings.web.trusted_proxies.clone()),
                ..door(
                    "web",
                    settings,
                    caps.web,
                    settings.web.max_connections_per_ip,
                    crate::http::web::MAX_BODY_BYTES,
                    tls,
                )
            },
            router: crate::http::web::router(state),
        }))
    }
}
