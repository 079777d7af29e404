//! The 24-hour rule: a link opened more than `web.code_after_hours` after it was sent, or
//! after a newer link went to the same person, first asks for the person's mobile number and
//! a 5-digit code sent to it (or, with `sms.provider = "email"`, only for the code, sent to
//! their address). Only then comes the identity check of `signin`.
//!
//! A number that is not the one on file gets exactly the page a right one gets, and no text
//! message: the link's holder learns nothing about the number. Both are written to the audit
//! trail through the one write path, so they also take the same time. A wrong code counts as
//! a failed check (lockout at `web.max_failures`).

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::signin::{Checked, SignIn, Stage, attempts_left};
use super::{Page, WebState, render};
use crate::crypto::TokenClaims;
use crate::crypto::web_code;
use crate::store::PersonView;
use crate::store::StoreError;
use crate::store::codes::{Code, NewCode};

/// How long a code may be used.
const CODE_VALID_SECS: i64 = 600;
/// A new code for the same link at most this often (asking again in between sends nothing
/// new; the code sent stays valid).
const RESEND_SECS: i64 = 60;
/// After the right code, the identity check must follow within this long.
const PASSED_VALID_SECS: i64 = 900;

#[derive(Template)]
#[template(path = "web/number.html")]
struct NumberPage {
    page: Page,
    action: String,
    csrf: String,
    by_email: bool,
}

#[derive(Template)]
#[template(path = "web/code.html")]
struct CodePage {
    page: Page,
    action: String,
    again: String,
    csrf: String,
    by_email: bool,
    error: String,
}

/// The number form's fields.
#[derive(Deserialize)]
pub struct NumberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    mobile: String,
}

/// The code form's fields.
#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

/// Where a link stands with the 24-hour rule.
enum CodeStep {
    /// The identity check is next.
    Open,
    /// A code must pass first: the latest asked from this link and not passed, if any.
    Needed(Option<Code>),
}

/// What identifies a link in `web_codes`: its SHA-256 (the token itself is not stored).
fn link_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl WebState {
    /// Where this link stands with the rule: open to the identity check, or needing a code
    /// first — it is old, or a newer one was sent since, or its person is locked out and a
    /// code would lift the lock — and no code was passed for it a moment ago.
    async fn code_step(
        &self,
        link: &TokenClaims,
        person: &PersonView,
        token: &str,
    ) -> Result<CodeStep, StoreError> {
        if self.code_after_secs == 0 {
            return Ok(CodeStep::Open);
        }
        let now = self.store.clock().now();
        let late = now - link.issued_at > self.code_after_secs
            || person.standing.locked_at(now)
            || self.store.newer_link_sent(&person.address, link).await?;
        if !late {
            return Ok(CodeStep::Open);
        }
        Ok(match self.store.latest_code(&link_hash(token)).await? {
            Some(c) if c.passed_at.is_some_and(|at| now - at <= PASSED_VALID_SECS) => {
                CodeStep::Open
            }
            Some(c) if c.passed_at.is_none() => CodeStep::Needed(Some(c)),
            _ => CodeStep::Needed(None),
        })
    }

    /// Whether this link must pass a code before the identity check. When the store cannot
    /// say, it must (closed, not open).
    pub(super) async fn code_needed(
        &self,
        link: &TokenClaims,
        person: &PersonView,
        token: &str,
    ) -> bool {
        !matches!(
            self.code_step(link, person, token).await,
            Ok(CodeStep::Open)
        )
    }

    /// The first step of the rule: the number (or, by email, a button that sends the code).
    pub(super) fn number_form(&self, link: &SignIn, status: StatusCode) -> Response {
        render(
            status,
            NumberPage {
                page: self.frame(),
                action: format!("/m/{}/number", link.token),
                csrf: self.signin_token(link),
                by_email: self.code_by_email,
            },
        )
    }

    fn code_form(&self, link: &SignIn, error: String, status: StatusCode) -> Response {
        render(
            status,
            CodePage {
                page: self.frame(),
                action: format!("/m/{}/code", link.token),
                again: format!("/m/{}", link.token),
                csrf: self.signin_token(link),
                by_email: self.code_by_email,
                error,
            },
        )
    }

    /// A keyed hash of the client's address: codes are counted per client without the
    /// database keeping addresses.
    fn client_key(&self, peer: &ConnectInfo<crate::http::Peer>, headers: &HeaderMap) -> Vec<u8> {
        self.form_token("client", &self.client_ip(peer, headers).to_string())
            .into_bytes()
    }
}

/// `POST /m/<token>/number`: sends a code when the number is the one on file; the same page
/// either way.
pub async fn send_code(
    State(state): State<WebState>,
    Path(token): Path<String>,
    peer: ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    Form(form): Form<NumberForm>,
) -> Response {
    let (link, fresh) = SignIn::of(&token, &headers);
    let (claims, target, person) = match state
        .attempt(&link, fresh, &form.csrf, Stage::Code, &peer, &headers)
        .await
    {
        Ok(found) => found,
        Err(r) => return r,
    };
    if !state.code_needed(&claims, &person, &link.token).await {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/m/{}", link.token))],
        )
            .into_response();
    }
    let matches = state.code_by_email
        || person
            .details
            .mobile
            .as_deref()
            .is_some_and(|on_file| same_number(&form.mobile, on_file));
    let code = matches.then(|| NewCode {
        link_hash: link_hash(&link.token),
        key_id: state.keyring.current_id(),
        nonce: crate::crypto::random_bytes::<16>().to_vec(),
        valid_secs: CODE_VALID_SECS,
        client: state.client_key(&peer, &headers),
    });
    if let Err(e) = state
        .store
        .code_asked(person.id, target.thread, code, RESEND_SECS)
        .await
    {
        tracing::error!(error = %e, "cannot record a code request");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(person = %person.id, "web view: a code was asked for");
    state.code_form(&link, String::new(), StatusCode::OK)
}

/// `POST /m/<token>/code`: the right code, in time, leads to the identity check (and lifts a
/// temporary lock made before this link was sent). A code is checked, and a wrong one
/// counted, only while a code asked from this link is live: guesses at a code nobody asked
/// for cannot lock anyone out.
pub async fn check_code(
    State(state): State<WebState>,
    Path(token): Path<String>,
    peer: ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Response {
    let (link, fresh) = SignIn::of(&token, &headers);
    let (claims, target, person) = match state
        .attempt(&link, fresh, &form.csrf, Stage::Code, &peer, &headers)
        .await
    {
        Ok(found) => found,
        Err(r) => return r,
    };
    let latest = match state.code_step(&claims, &person, &link.token).await {
        Ok(CodeStep::Open) => return state.form(&link, String::new(), StatusCode::OK),
        Ok(CodeStep::Needed(latest)) => latest,
        Err(e) => {
            tracing::error!(error = %e, "cannot read a code");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let now = state.store.clock().now();
    let Some(code) = latest.filter(|c| c.expires_at > now) else {
        return state.code_form(
            &link,
            "There is no code waiting for this link: it has expired, or none was sent. \
             Please ask for a new one."
                .into(),
            StatusCode::UNAUTHORIZED,
        );
    };
    let right = web_code::matches(&state.keyring, code.key_id, &code.nonce, &form.code);
    if person.standing.locked_at(now) {
        // A code that would lift a lock: no attempts are left to count, so a wrong one
        // spends the code (one guess per code; a person gets only a few codes an hour).
        if !right {
            if let Err(e) = state.store.code_void(code.id).await {
                tracing::error!(error = %e, "cannot void a code");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            return state.code_form(
                &link,
                "That code is not right, and it cannot be tried again. Please ask for a new one."
                    .into(),
                StatusCode::UNAUTHORIZED,
            );
        }
    } else {
        match state
            .checked(&person, target.thread, std::future::ready(right))
            .await
        {
            Ok(Checked::Passed) => {}
            Ok(Checked::Failed { left }) => {
                return state.code_form(&link, attempts_left(left), StatusCode::UNAUTHORIZED);
            }
            Err(r) => return r,
        }
    }
    let recorded = state
        .store
        .code_passed(code.id, person.id, target.thread)
        .await;
    let lifted = if state.code_may_lift(&person, &claims) {
        state
            .store
            .web_lift_lock(person.id, target.thread, claims.issued_at)
            .await
    } else {
        Ok(())
    };
    if let Err(e) = recorded.and(lifted) {
        tracing::error!(error = %e, "cannot record a passed code");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    tracing::info!(person = %person.id, "web view: code passed");
    state.form(&link, String::new(), StatusCode::OK)
}

/// Whether a number as typed is the number on file. Both are reduced to digits (a leading
/// `00` read as `+`); a number typed without its country code matches when it is the end of
/// the one on file, after its national leading zero (`07700 900123` for `+44 7700 900123`),
/// if at least seven digits remain. Compared in constant time.
fn same_number(typed: &str, on_file: &str) -> bool {
    let digits = |s: &str| -> (bool, String) {
        let s = s.trim();
        let plus = s.starts_with('+') || s.starts_with("00");
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        let d = if s.starts_with("00") {
            d[2..].to_owned()
        } else {
            d
        };
        (plus, d)
    };
    let (typed_plus, typed) = digits(typed);
    let (_, file) = digits(on_file);
    if typed_plus {
        return crate::crypto::constant_time_eq(typed.as_bytes(), file.as_bytes());
    }
    let national = typed.trim_start_matches('0');
    if national.len() < 7 || national.len() > file.len() {
        return false;
    }
    crate::crypto::constant_time_eq(
        national.as_bytes(),
        &file.as_bytes()[file.len() - national.len()..],
    )
}

#[cfg(test)]
mod tests {
    use super::same_number;

    #[test]
    fn numbers_match_as_people_type_them() {
        let on_file = "+44 7700 900123";
        assert!(same_number("+447700900123", on_file));
        assert!(same_number("0044 7700 900 123", on_file));
        assert!(same_number("07700 900123", on_file));
        assert!(same_number("(0)7700-900-123", on_file));
        assert!(!same_number("+447700900124", on_file));
        assert!(!same_number("+17700900123", on_file));
        assert!(!same_number("900123", on_file));
        assert!(!same_number("", on_file));
        assert!(!same_number("07700 900124", on_file));
    }
}
