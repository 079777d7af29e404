//! Signing in from a link: `GET /m/<token>` asks who the person is, `POST /m/<token>` checks
//! it against the directory. A link that does not open gets one neutral page whatever the
//! cause; failed checks are counted and lock the person out at `web.max_failures` (staff are
//! told); attempts are limited per client address and per person.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Page, SIGNIN_COOKIE, WebState, render, session_hash, signin_cookie};
use crate::config::WebVerify;
use crate::crypto::{LinkToken, TokenClaims};
use crate::domain::lockout;
use crate::store::{PersonView, TokenTarget};

#[derive(Template)]
#[template(path = "web/signin.html")]
struct SignInPage {
    page: Page,
    action: String,
    csrf: String,
    error: String,
    ask_last_name: bool,
    ask_passcode: bool,
}

/// The sign-in form's fields.
#[derive(Deserialize)]
pub struct Identity {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) birth_date: String,
    #[serde(default)]
    pub(super) last_name: String,
    #[serde(default)]
    pub(super) passcode: String,
}

/// What the directory holds for the configured identity check.
pub(super) enum OnFile {
    BirthDate(String),
    /// The date of birth, and the last word of the name, lower-cased.
    BirthDateAndLastName(String, String),
    /// An Argon2id PHC string.
    Passcode(String),
}

/// Whether what was typed equals what is on file, in time that does not depend on where they
/// differ.
fn same(given: &str, on_file: &str) -> bool {
    crate::crypto::constant_time_eq(given.as_bytes(), on_file.as_bytes())
}

/// What a link names, when it opens: its claims, its participant (active, in an existing
/// thread) and their directory entry.
async fn opened(state: &WebState, token: &str) -> Option<(TokenClaims, TokenTarget, PersonView)> {
    let link = LinkToken::verify(
        token,
        &state.keyring,
        state.store.clock().now(),
        state.token_ttl_days,
    )
    .ok()?;
    let target = state.store.token_target(&link.claims).await.ok()??;
    if target.participant.revoked {
        return None;
    }
    let person = state
        .store
        .person(&target.participant.address)
        .await
        .ok()??;
    Some((link.claims, target, person))
}

/// A link being signed in from: its token (lower case: letter case never makes two links of
/// one) and this browser's sign-in cookie, which the forms' anti-forgery tokens are bound to.
pub(super) struct SignIn {
    pub token: String,
    pub browser: String,
}

impl SignIn {
    /// The link in `path`, with this browser's sign-in cookie if it has one.
    pub fn of(token: &str, headers: &HeaderMap) -> (SignIn, bool) {
        let existing = signin_cookie(headers);
        let fresh = existing.is_none();
        let browser = existing.unwrap_or_else(|| {
            data_encoding::BASE64URL_NOPAD.encode(&crate::crypto::random_bytes::<32>())
        });
        (
            SignIn {
                token: token.to_ascii_lowercase(),
                browser,
            },
            fresh,
        )
    }

    /// What the sign-in forms' anti-forgery tokens are a MAC of.
    fn binding(&self) -> String {
        format!("{}:{}", self.token, self.browser)
    }
}

/// Which step of signing in a POST is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// The mobile number or the code of the 24-hour rule: open to a temporarily locked person
    /// whose link is newer than the lock (a passed code lifts it).
    Code,
    /// The identity check.
    Identity,
}

/// The result of one reserved check.
pub(super) enum Checked {
    Passed,
    Failed { left: u64 },
}

impl WebState {
    /// The anti-forgery token of a sign-in form.
    pub(super) fn signin_token(&self, link: &SignIn) -> String {
        self.form_token("signin", &link.binding())
    }

    /// What every sign-in form's POST checks first, in this order: this browser's sign-in
    /// cookie and the form's token bound to it and the link, that the link opens, that the
    /// person is not locked out (at the code step, a temporary lock older than the link lets
    /// them through: a passed code lifts it), and the attempt limits per client address and
    /// per person. The link's claims, participant and person, or the page to answer with.
    pub(super) async fn attempt(
        &self,
        link: &SignIn,
        fresh: bool,
        csrf: &str,
        stage: Stage,
        peer: &ConnectInfo<crate::http::Peer>,
        headers: &HeaderMap,
    ) -> Result<(TokenClaims, TokenTarget, PersonView), Response> {
        if fresh || !self.form_token_ok("signin", &link.binding(), csrf) {
            return Err(self.forged());
        }
        let Some((claims, target, person)) = opened(self, &link.token).await else {
            return Err(self.invalid_link());
        };
        let now = self.store.clock().now();
        if person.standing.locked_at(now)
            && !(stage == Stage::Code && self.code_may_lift(&person, &claims))
        {
            return Err(self.locked(&person));
        }
        self.per_address
            .take(self.client_ip(peer, headers))
            .and_then(|()| self.per_person.take(person.id))
            .map_err(|wait| self.too_many(wait))?;
        Ok((claims, target, person))
    }

    /// Whether a code passed from this link would lift the person's lock: a temporary one,
    /// made before the link was sent, and codes are in use.
    pub(super) fn code_may_lift(&self, person: &PersonView, link: &TokenClaims) -> bool {
        self.code_after_secs > 0
            && lockout::code_lifts(person.standing, link.issued_at, self.store.clock().now())
    }

    /// One check of what a person typed, counted before it is compared (see
    /// [`crate::domain::lockout`]): `Passed`, or `Failed` with the attempts left; a lock, a
    /// burst that took every attempt, or a store that failed answer with their page.
    pub(super) async fn checked(
        &self,
        person: &PersonView,
        thread: crate::domain::ThreadId,
        compare: impl std::future::Future<Output = bool>,
    ) -> Result<Checked, Response> {
        match self
            .store
            .web_reserve_check(person.id, self.max_failures)
            .await
        {
            Ok(lockout::Reservation::Check { .. }) => {}
            Ok(lockout::Reservation::Locked { until }) => return Err(self.locked_until(until)),
            Ok(lockout::Reservation::Wait) => return Err(self.too_many(5)),
            Err(e) => {
                tracing::error!(error = %e, "cannot reserve a check");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        }
        if compare.await {
            return Ok(Checked::Passed);
        }
        let left = match self
            .store
            .web_check_failed(person.id, thread, self.max_failures)
            .await
        {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "cannot record a failed check");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        };
        tracing::info!(person = %person.id, left, "web view: a check failed");
        if left == 0 {
            let until = self
                .store
                .person(&person.address)
                .await
                .ok()
                .flatten()
                .and_then(|p| p.standing.locked.and_then(|(_, until)| until));
            return Err(self.locked_until(until));
        }
        Ok(Checked::Failed { left })
    }

    /// The identity check's form.
    pub(super) fn form(&self, link: &SignIn, error: String, status: StatusCode) -> Response {
        render(
            status,
            SignInPage {
                page: self.frame(),
                action: format!("/m/{}", link.token),
                csrf: self.signin_token(link),
                error,
                ask_last_name: self.verify == WebVerify::DobLastname,
                ask_passcode: self.verify == WebVerify::Passcode,
            },
        )
    }

    /// What the configured check compares with, if the directory has it for this person.
    pub(super) async fn on_file(&self, person: &PersonView) -> Option<OnFile> {
        let date = person.details.birth_date.clone();
        match self.verify {
            WebVerify::Dob => date.map(OnFile::BirthDate),
            WebVerify::DobLastname => {
                let last = person
                    .details
                    .name
                    .as_deref()?
                    .split_whitespace()
                    .last()?
                    .to_lowercase();
                Some(OnFile::BirthDateAndLastName(date?, last))
            }
            WebVerify::Passcode => self
                .store
                .passcode_hash(person.id)
                .await
                .ok()
                .flatten()
                .map(OnFile::Passcode),
        }
    }

    /// Whether what was typed is what is on file, in time that does not depend on where
    /// they differ.
    pub(super) async fn matches(on_file: OnFile, identity: &Identity) -> bool {
        match on_file {
            OnFile::Passcode(stored) => {
                let given = identity.passcode.clone();
                // Argon2 takes a while on purpose: off the async workers.
                tokio::task::spawn_blocking(move || {
                    crate::crypto::passcode::matches(&given, &stored)
                })
                .await
                .unwrap_or(false)
            }
            OnFile::BirthDate(date) => same(&birth_date(&identity.birth_date), &date),
            OnFile::BirthDateAndLastName(date, last) => {
                // Both compared, whatever the first gave, so the time says nothing about which
                // failed.
                let date_ok = same(&birth_date(&identity.birth_date), &date);
                let name_ok = same(&identity.last_name.trim().to_lowercase(), &last);
                date_ok & name_ok
            }
        }
    }

    /// Opens a session for `person` as `participant`; the new cookie's value. A lock that came
    /// meanwhile (a concurrent attempt was the last and failed) opens nothing.
    pub(super) async fn open_session(
        &self,
        person: &PersonView,
        participant: crate::domain::ParticipantId,
    ) -> Result<String, Response> {
        let cookie = data_encoding::BASE64URL_NOPAD.encode(&crate::crypto::random_bytes::<32>());
        match self
            .store
            .web_sign_in(session_hash(&cookie), person.id, participant)
            .await
        {
            Ok(()) => {}
            Err(crate::store::StoreError::Locked { until }) => {
                return Err(self.locked_until(until));
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot open a web session");
                return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
            }
        }
        tracing::info!(person = %person.id, "web view: signed in");
        Ok(cookie)
    }

    /// The page for a person locked out now.
    pub(super) fn locked(&self, person: &PersonView) -> Response {
        self.locked_until(person.standing.locked.and_then(|(_, until)| until))
    }

    /// The page for a lock that ends at `until` (`None`: until staff lift it).
    pub(super) fn locked_until(&self, until: Option<i64>) -> Response {
        let mut lines = vec![
            "Your details could not be confirmed too many times, so access to your secure \
             messages is locked for your protection."
                .into(),
        ];
        lines.push(match until {
            Some(at) if self.code_after_secs > 0 => format!(
                "You can try again after {} (in about {}). A newer email from {} lets you in \
                 sooner, with a code we send you.",
                shown_time(at),
                in_words(at - self.store.clock().now()),
                self.organization
            ),
            Some(at) => format!(
                "You can try again after {} (in about {}).",
                shown_time(at),
                in_words(at - self.store.clock().now()),
            ),
            None => format!("Please contact {} to unlock it.", self.organization),
        });
        if !self.contact.is_empty() {
            lines.push(format!("To reach {}: {}", self.organization, self.contact));
        }
        self.message(StatusCode::FORBIDDEN, "Access is locked", lines)
    }

    pub(super) fn cannot_check(&self) -> Response {
        self.message(
            StatusCode::FORBIDDEN,
            "We cannot confirm who you are online",
            vec![format!(
                "{} has not recorded the details needed to confirm who you are. Please contact them.",
                self.organization
            )],
        )
    }

    pub(super) fn too_many(&self, wait: u64) -> Response {
        let mut r = self.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait a moment",
            vec![format!(
                "There were too many attempts. Please try again in {wait} seconds."
            )],
        );
        if let Ok(v) = wait.to_string().parse() {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }

    /// The `Set-Cookie` value of this browser's sign-in cookie (it binds the sign-in forms'
    /// anti-forgery tokens to the browser that was shown them).
    pub(super) fn signin_cookie_header(&self, value: &str) -> String {
        format!(
            "{SIGNIN_COOKIE}={value}; Path=/m/; HttpOnly; SameSite=Strict; Max-Age=3600{}",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// A sign-in page, with this browser's sign-in cookie set when it is new.
    pub(super) fn with_signin_cookie(
        &self,
        link: &SignIn,
        fresh: bool,
        page: Response,
    ) -> Response {
        let mut page = page;
        if fresh && let Ok(v) = self.signin_cookie_header(&link.browser).parse() {
            page.headers_mut().append(header::SET_COOKIE, v);
        }
        page
    }
}

/// A time of day as a person reads it (UTC: the page has no script to know their zone).
fn shown_time(at: i64) -> String {
    let iso = crate::clock::rfc3339(at);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

/// A wait in plain words.
fn in_words(secs: i64) -> String {
    let minutes = (secs.max(60) + 59) / 60;
    match minutes {
        1 => "a minute".into(),
        m if m < 55 => format!("{m} minutes"),
        m if m < 90 => "an hour".into(),
        m if m < 20 * 60 => format!("{} hours", (m + 30) / 60),
        m if m < 36 * 60 => "a day".into(),
        m => format!("{} days", (m + 12 * 60) / (24 * 60)),
    }
}

/// `GET /m/<token>`.
pub async fn show_form(
    State(state): State<WebState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (link, fresh) = SignIn::of(&token, &headers);
    let Some((claims, _, person)) = opened(&state, &link.token).await else {
        return state.invalid_link();
    };
    let page = if person.standing.locked_at(state.store.clock().now()) {
        if state.code_may_lift(&person, &claims) {
            state.number_form(&link, StatusCode::OK)
        } else {
            state.locked(&person)
        }
    } else if state.on_file(&person).await.is_none() {
        state.cannot_check()
    } else if state.code_needed(&claims, &person, &link.token).await {
        state.number_form(&link, StatusCode::OK)
    } else {
        state.form(&link, String::new(), StatusCode::OK)
    };
    state.with_signin_cookie(&link, fresh, page)
}

/// `POST /m/<token>`.
pub async fn check_identity(
    State(state): State<WebState>,
    Path(token): Path<String>,
    peer: ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    Form(identity): Form<Identity>,
) -> Response {
    let (link, fresh) = SignIn::of(&token, &headers);
    let (claims, target, person) = match state
        .attempt(
            &link,
            fresh,
            &identity.csrf,
            Stage::Identity,
            &peer,
            &headers,
        )
        .await
    {
        Ok(found) => found,
        Err(r) => return r,
    };
    if state.code_needed(&claims, &person, &link.token).await {
        return state.number_form(&link, StatusCode::FORBIDDEN);
    }
    let Some(on_file) = state.on_file(&person).await else {
        return state.cannot_check();
    };
    match state
        .checked(
            &person,
            target.thread,
            WebState::matches(on_file, &identity),
        )
        .await
    {
        Ok(Checked::Passed) => {}
        Ok(Checked::Failed { left }) => {
            return state.form(&link, attempts_left(left), StatusCode::UNAUTHORIZED);
        }
        Err(r) => return r,
    }
    let cookie = match state.open_session(&person, target.participant.id).await {
        Ok(cookie) => cookie,
        Err(r) => return r,
    };
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, state.session_cookie_header(&cookie)),
            (header::LOCATION, format!("/t/{}", target.thread)),
        ],
    )
        .into_response()
}

/// What a form says after a failed check.
pub(super) fn attempts_left(left: u64) -> String {
    format!(
        "These details do not match our records. {left} attempt{} left before access is locked.",
        if left == 1 { "" } else { "s" }
    )
}

/// A date of birth as typed, in the directory's form (`YYYY-MM-DD`): a date field sends that
/// already; typed by hand, `DD.MM.YYYY` is understood too. Anything else stays as it is (and
/// matches nothing).
fn birth_date(text: &str) -> String {
    let text = text.trim();
    let parts: Vec<&str> = text.split('.').collect();
    if let [d, m, y] = parts.as_slice()
        && y.len() == 4
        && let (Ok(d), Ok(m)) = (d.parse::<u8>(), m.parse::<u8>())
    {
        return format!("{y}-{m:02}-{d:02}");
    }
    text.to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn waits_in_plain_words() {
        assert_eq!(super::in_words(15 * 60), "15 minutes");
        assert_eq!(super::in_words(3600), "an hour");
        assert_eq!(super::in_words(86_400), "a day");
        assert_eq!(super::in_words(20), "a minute");
    }

    #[test]
    fn dates_of_birth_as_typed() {
        assert_eq!(super::birth_date("1984-03-07"), "1984-03-07");
        assert_eq!(super::birth_date(" 7.3.1984 "), "1984-03-07");
        assert_eq!(super::birth_date("07.03.1984"), "1984-03-07");
        assert_eq!(super::birth_date("03/07/1984"), "03/07/1984");
    }
}
