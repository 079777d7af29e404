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

use super::{Page, WebState, render, session_hash};
use crate::config::WebVerify;
use crate::crypto::{LinkToken, TokenClaims};
use crate::domain::PersonStatus;
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
enum OnFile {
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

impl WebState {
    /// What every sign-in form's POST checks first, in this order: its anti-forgery token,
    /// that the link opens, that the person is not locked out, and the attempt limits per
    /// client address and per person. The link's claims, participant and person, or the
    /// page to answer with.
    pub(super) async fn attempt(
        &self,
        token: &str,
        csrf: &str,
        peer: &ConnectInfo<crate::http::Peer>,
        headers: &HeaderMap,
    ) -> Result<(TokenClaims, TokenTarget, PersonView), Response> {
        if !self.form_token_ok("signin", token, csrf) {
            return Err(self.forged());
        }
        let Some((link, target, person)) = opened(self, token).await else {
            return Err(self.invalid_link());
        };
        if person.details.status == PersonStatus::Locked {
            return Err(self.locked());
        }
        self.per_address
            .take(self.client_ip(peer, headers))
            .and_then(|()| self.per_person.take(person.id))
            .map_err(|wait| self.too_many(wait))?;
        Ok((link, target, person))
    }

    /// The identity check's form.
    pub(super) fn form(&self, token: &str, error: String, status: StatusCode) -> Response {
        render(
            status,
            SignInPage {
                page: self.frame(),
                action: format!("/m/{token}"),
                csrf: self.form_token("signin", token),
                error,
                ask_last_name: self.verify == WebVerify::DobLastname,
                ask_passcode: self.verify == WebVerify::Passcode,
            },
        )
    }

    /// What the configured check compares with, if the directory has it for this person.
    async fn on_file(&self, person: &PersonView) -> Option<OnFile> {
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

    /// Whether what was typed is what the directory has for the configured check; `None` when
    /// it has nothing to check against.
    pub(super) async fn identity_matches(
        &self,
        person: &PersonView,
        identity: &Identity,
    ) -> Option<bool> {
        Some(match self.on_file(person).await? {
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
        })
    }

    /// Opens a session for `person` as `participant`; the new cookie's value.
    pub(super) async fn open_session(
        &self,
        person: &PersonView,
        participant: crate::domain::ParticipantId,
    ) -> Result<String, Response> {
        let cookie = data_encoding::BASE64URL_NOPAD.encode(&crate::crypto::random_bytes::<32>());
        if let Err(e) = self
            .store
            .web_sign_in(session_hash(&cookie), person.id, participant)
            .await
        {
            tracing::error!(error = %e, "cannot open a web session");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
        tracing::info!(person = %person.id, "web view: signed in");
        Ok(cookie)
    }

    pub(super) fn locked(&self) -> Response {
        self.message(
            StatusCode::FORBIDDEN,
            "Access is locked",
            vec![
                "Your details could not be confirmed too many times, so access to your secure messages is locked for your protection.".into(),
                format!("Please contact {} to unlock it.", self.organization),
            ],
        )
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

    /// Counts a failed check (a wrong identity, a wrong code): `Ok` with the attempts left,
    /// or the page to answer with (locked, or the store failed).
    pub(super) async fn count_failure(
        &self,
        person: &PersonView,
        thread: crate::domain::ThreadId,
    ) -> Result<u64, Response> {
        let failures = match self
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
        tracing::info!(person = %person.id, failures, "web view: a check failed");
        if failures >= u64::from(self.max_failures) {
            return Err(self.locked());
        }
        Ok(u64::from(self.max_failures) - failures)
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
}

/// `GET /m/<token>`.
pub async fn show_form(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let Some((link, _, person)) = opened(&state, &token).await else {
        return state.invalid_link();
    };
    if person.details.status == PersonStatus::Locked {
        return state.locked();
    }
    if state.on_file(&person).await.is_none() {
        return state.cannot_check();
    }
    if state.code_needed(&link, &person, &token).await {
        return state.number_form(&token, StatusCode::OK);
    }
    state.form(&token, String::new(), StatusCode::OK)
}

/// `POST /m/<token>`.
pub async fn check_identity(
    State(state): State<WebState>,
    Path(token): Path<String>,
    peer: ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    Form(identity): Form<Identity>,
) -> Response {
    let (link, target, person) = match state.attempt(&token, &identity.csrf, &peer, &headers).await
    {
        Ok(found) => found,
        Err(r) => return r,
    };
    if state.code_needed(&link, &person, &token).await {
        return state.number_form(&token, StatusCode::FORBIDDEN);
    }
    let Some(matches) = state.identity_matches(&person, &identity).await else {
        return state.cannot_check();
    };
    if !matches {
        return match state.count_failure(&person, target.thread).await {
            Ok(left) => state.form(&token, attempts_left(left), StatusCode::UNAUTHORIZED),
            Err(response) => response,
        };
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
    fn dates_of_birth_as_typed() {
        assert_eq!(super::birth_date("1984-03-07"), "1984-03-07");
        assert_eq!(super::birth_date(" 7.3.1984 "), "1984-03-07");
        assert_eq!(super::birth_date("07.03.1984"), "1984-03-07");
        assert_eq!(super::birth_date("03/07/1984"), "03/07/1984");
    }
}
