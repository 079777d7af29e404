//! The secure web view: where the link in a secure notification leads. The recipient proves
//! who they are (`signin`), then reads and answers their conversations (`conversation`).
//!
//! Every page is rendered on the server from compiled templates (`templates/web`), with one
//! stylesheet of our own and no script. Every answer carries a strict Content-Security-Policy,
//! `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` (the token in a link must not leak
//! to anyone) and `Cache-Control: no-store`. A session is a random value in an `HttpOnly`,
//! `SameSite=Strict` cookie (`Secure` when the public URL is https); the database keeps only
//! its SHA-256. Every form carries an anti-forgery token derived from the link or the session
//! it belongs to, so nothing extra is stored.

mod actions;
mod code;
mod compose;
mod conversation;
mod inbox;
mod resume;
mod signin;

use std::net::IpAddr;
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use super::rate_limit::RateLimit;
use crate::config::WebVerify;
use crate::crypto::{Keyring, Purpose};
use crate::domain::PersonId;
use crate::net::proxies::TrustedProxies;
use crate::store::Store;
use crate::store::web::WebSession;

/// The largest form the web view takes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The cookie that holds a session.
const SESSION_COOKIE: &str = "sealpost_session";

/// The cookie that binds a browser's sign-in forms to it before there is a session: a form
/// posted from another site comes without it (`SameSite=Strict`), so nobody can sign a
/// patient's browser into someone else's conversation.
const SIGNIN_COOKIE: &str = "sealpost_signin";

/// What every page handler shares.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub keyring: Arc<Keyring>,
    /// Wakes the outbox worker after a post queued notifications.
    pub wake: Arc<Notify>,
    pub organization: String,
    /// `general.contact`: how to reach the practice otherwise (empty: not said).
    pub contact: String,
    /// The host (and port) of `general.public_url`: a form posted from a page of another
    /// origin is refused.
    pub public_host: String,
    pub recognition_phrase: String,
    pub notice: String,
    /// `web.billing_consent`: a new message needs the person's agreement that it may be billed.
    pub billing_consent: bool,
    /// Whether the public URL is https: cookies are then `Secure`.
    pub secure_cookies: bool,
    pub verify: WebVerify,
    pub max_failures: u32,
    pub session_idle: i64,
    pub session_max: i64,
    /// `policy.token_ttl_days`: links older than this do not open.
    pub token_ttl_days: u32,
    /// `web.code_after_hours` in seconds: a link older than this (or with a newer one sent
    /// since) asks for a code first. 0: never.
    pub code_after_secs: i64,
    /// Codes go by email (`sms.provider = "email"`): no number is asked.
    pub code_by_email: bool,
    /// The stylesheet served at `/style.css`: the built-in one, or `web.stylesheet`.
    pub stylesheet: Arc<str>,
    pub per_address: Arc<RateLimit<IpAddr>>,
    /// New conversations per person (`web.new_conversations_per_hour`).
    pub new_per_person: Arc<RateLimit<PersonId>>,
    /// `web.trusted_proxies`: whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
    pub per_person: Arc<RateLimit<PersonId>>,
}

/// What the page frame shows.
pub struct Page {
    pub organization: String,
    pub recognition: String,
    pub signed_in: bool,
    /// The session's anti-forgery token (for the sign-out button).
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "web/message.html")]
struct MessagePage<'a> {
    page: Page,
    heading: &'a str,
    lines: Vec<String>,
}

/// The web view's routes.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/style.css", get(style))
        .route(
            "/m/{token}",
            get(signin::show_form).post(signin::check_identity),
        )
        .route("/m/{token}/number", post(code::send_code))
        .route("/m/{token}/code", post(code::check_code))
        .route("/inbox", get(inbox::inbox))
        .route("/t/{thread}", get(conversation::thread))
        .route("/t/{thread}/reply", post(actions::reply))
        .route("/t/{thread}/archive", post(actions::archive))
        .route("/t/{thread}/reopen", post(actions::reopen))
        .route("/t/{thread}/cancel", post(actions::cancel))
        .route("/new", get(compose::new_form).post(compose::new_message))
        .route("/consent", post(actions::consent))
        .route("/resume", post(resume::resume))
        .route("/signout", post(actions::sign_out))
        .fallback(|State(state): State<WebState>| async move {
            state.message(
                StatusCode::NOT_FOUND,
                "Page not found",
                vec!["There is no page here.".into()],
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_cross_site,
        ))
        .layer(axum::middleware::from_fn(protect))
        .with_state(state)
}

/// The headers every answer of the web view carries.
async fn protect(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The built-in stylesheet.
pub const STYLESHEET: &str = include_str!("../web_style.css");

async fn style(State(state): State<WebState>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        state.stylesheet.to_string(),
    )
        .into_response()
}

async fn home(State(state): State<WebState>) -> Response {
    state.message(
        StatusCode::OK,
        "Secure messages",
        vec![format!(
            "To read a secure message from {}, open the link in the email that told you about it.",
            state.organization
        )],
    )
}

impl WebState {
    /// The page frame, signed out.
    fn frame(&self) -> Page {
        Page {
            organization: self.organization.clone(),
            recognition: self.recognition_phrase.clone(),
            signed_in: false,
            csrf: String::new(),
        }
    }

    /// The page frame of a session.
    fn frame_for(&self, cookie: &str) -> Page {
        Page {
            signed_in: true,
            csrf: self.form_token("session", cookie),
            ..self.frame()
        }
    }

    /// A page that only says something.
    fn message(&self, status: StatusCode, heading: &str, lines: Vec<String>) -> Response {
        render(
            status,
            MessagePage {
                page: self.frame(),
                heading,
                lines,
            },
        )
    }

    /// The one answer for every link that does not open: bad, tampered, expired, for a
    /// removed participant. The same page for each, so a guesser learns nothing.
    fn invalid_link(&self) -> Response {
        self.message(
            StatusCode::NOT_FOUND,
            "This link is not valid any more",
            vec![format!("Please ask {} for a new one.", self.organization)],
        )
    }

    /// The answer to a request without a live session.
    fn signed_out(&self) -> Response {
        self.message(
            StatusCode::UNAUTHORIZED,
            "Please sign in again",
            vec![
                "You are not signed in, or your session has ended.".into(),
                "Open the link in the latest email about your secure messages to continue.".into(),
            ],
        )
    }

    /// An anti-forgery token for a form: a MAC of what the form belongs to (the link's token,
    /// or the session's cookie) under the keyring's current web-form key.
    fn form_token(&self, kind: &str, of: &str) -> String {
        let key = self
            .keyring
            .derived(self.keyring.current_id(), Purpose::WebForm)
            .expect("the current key is always in the keyring");
        let mut mac =
            hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(kind.as_bytes());
        mac.update(b":");
        mac.update(of.as_bytes());
        data_encoding::BASE64URL_NOPAD.encode(&mac.finalize().into_bytes())
    }

    /// Whether `given` is the form token of `kind`/`of` (compared in constant time).
    fn form_token_ok(&self, kind: &str, of: &str, given: &str) -> bool {
        crate::crypto::constant_time_eq(self.form_token(kind, of).as_bytes(), given.as_bytes())
    }

    /// The live session of a request, with its cookie value.
    async fn session(&self, headers: &HeaderMap) -> Option<(WebSession, String)> {
        let cookie = session_cookie(headers)?;
        let found = self
            .store
            .web_session(&session_hash(&cookie), self.session_idle, self.session_max)
            .await
            .ok()??;
        Some((found, cookie))
    }

    /// The `Set-Cookie` value of a new session.
    fn session_cookie_header(&self, value: &str) -> String {
        format!(
            "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.session_max,
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that removes the session cookie.
    fn clear_cookie_header(&self) -> String {
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The 403 for a form without its anti-forgery token.
    fn forged(&self) -> Response {
        self.message(
            StatusCode::FORBIDDEN,
            "This form has expired",
            vec!["Please go back, reload the page and try again.".into()],
        )
    }
}

/// Renders a template, or a plain 500 if it cannot be (a defect: logged, no content).
fn render(status: StatusCode, template: impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a web page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The session cookie's value, if the request has one of the right shape.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE)
}

/// The sign-in cookie's value, if the request has one of the right shape.
fn signin_cookie(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SIGNIN_COOKIE)
}

/// A cookie of ours (32 random bytes, base64url): its value, if present and of that shape.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Whether a POST comes from a page of this site: a browser says so (`Sec-Fetch-Site`), or at
/// least names the page's origin (`Origin`), which must be the public URL's or the request's
/// own host. Clients that say neither (scripts, old browsers) are left to the forms' tokens.
fn same_origin(headers: &HeaderMap, public_host: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    let own = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    host.eq_ignore_ascii_case(public_host) || (!own.is_empty() && host.eq_ignore_ascii_case(own))
}

/// Refuses a form posted from another site's page (a forged sign-in, a forged reply).
async fn refuse_cross_site(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == axum::http::Method::POST
        && !same_origin(request.headers(), &state.public_host)
    {
        tracing::info!("web view: a form from another site was refused");
        return state.forged();
    }
    next.run(request).await
}

/// What the database keeps of a session's cookie.
fn session_hash(cookie: &str) -> Vec<u8> {
    Sha256::digest(cookie.as_bytes()).to_vec()
}

impl WebState {
    /// The client's address: the connection's, or — when that is a trusted proxy
    /// (`web.trusted_proxies`) — what `X-Forwarded-For` says, read from the right (see
    /// [`TrustedProxies::client`]).
    fn client_ip(&self, peer: &ConnectInfo<crate::http::Peer>, headers: &HeaderMap) -> IpAddr {
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok());
        self.proxies.client(peer.0.0.ip(), forwarded)
    }
}

/// Initials for a badge: of the name's first and last words, else of the address.
fn initials(name: Option<&str>, address: &str) -> String {
    let words: Vec<&str> = name
        .unwrap_or("")
        .split_whitespace()
        .filter(|w| w.chars().next().is_some_and(char::is_alphabetic))
        .collect();
    let letters: String = match words.as_slice() {
        [] => address.chars().take(1).collect(),
        [one] => one.chars().take(1).collect(),
        [first, .., last] => first.chars().take(1).chain(last.chars().take(1)).collect(),
    };
    letters.to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials_of_names_and_addresses() {
        assert_eq!(initials(Some("Dr Anna Lee"), "lee@x"), "DL");
        assert_eq!(initials(Some("Lee"), "lee@x"), "L");
        assert_eq!(initials(None, "jane@x"), "J");
        assert_eq!(initials(Some("  "), "jane@x"), "J");
    }

    #[test]
    fn forms_from_other_sites_are_refused() {
        let with = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            same_origin(&h, "messages.example.org")
        };
        assert!(
            with(&[]),
            "a client that says nothing is left to the tokens"
        );
        assert!(with(&[("sec-fetch-site", "same-origin")]));
        assert!(!with(&[("sec-fetch-site", "cross-site")]));
        assert!(!with(&[("sec-fetch-site", "same-site")]));
        assert!(with(&[("origin", "https://messages.example.org")]));
        assert!(!with(&[("origin", "https://evil.example")]));
        assert!(!with(&[("origin", "null")]));
        // Behind a proxy that keeps Host, or directly: the request's own host.
        assert!(with(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]));
    }

    #[test]
    fn session_cookies_are_read_only_in_their_own_shape() {
        let mut h = HeaderMap::new();
        let good = "a".repeat(43);
        h.insert(
            header::COOKIE,
            format!("other=1; {SESSION_COOKIE}={good}").parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), Some(good));
        h.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}=short").parse().unwrap(),
        );
        assert_eq!(session_cookie(&h), None);
    }
}
