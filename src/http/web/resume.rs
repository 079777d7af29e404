//! Nothing typed is lost when a session runs out. A reply or a new message sent after the
//! idle limit comes back on a page that keeps what was typed (in the form itself: nothing is
//! stored on the server), asks the person to confirm who they are, and then sends it.
//!
//! Taking up a session needs the browser that held it (its cookie: the expired session says
//! whose it was, and the page's anti-forgery token is bound to it) and the identity check, with
//! the same counting and lockout as signing in. A session that was ended — signed out, or its
//! person locked — is not taken up: the page then shows the text back to copy, and says how
//! to sign in again.

use askama::Template;
use axum::Form;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::actions::{ReplyForm, send_reply};
use super::compose::{NewForm, send_new};
use super::signin::{Checked, Identity, attempts_left};
use super::{Page, WebState, render, session_cookie, session_hash};
use crate::config::WebVerify;
use crate::store::web::WebSession;

/// What the person was sending, carried in the page's form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Pending {
    /// `reply` or `new`.
    #[serde(default)]
    pub(super) kind: String,
    /// The original form's anti-forgery token (bound to the session it came from).
    #[serde(default)]
    pub(super) form_csrf: String,
    #[serde(default)]
    pub(super) thread: String,
    #[serde(default)]
    pub(super) answers: String,
    #[serde(default)]
    pub(super) body: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    pub(super) subject: String,
    #[serde(default)]
    pub(super) respond: String,
    #[serde(default)]
    pub(super) how: String,
    #[serde(default)]
    pub(super) no_reply: String,
    #[serde(default)]
    pub(super) billing: String,
}

impl Pending {
    pub(super) fn reply(thread: &str, form: &ReplyForm) -> Pending {
        Pending {
            kind: "reply".into(),
            form_csrf: form.csrf.clone(),
            thread: thread.to_owned(),
            answers: form.answers.clone(),
            body: form.body.clone(),
            ..Pending::default()
        }
    }

    pub(super) fn new_message(form: &NewForm) -> Pending {
        Pending {
            kind: "new".into(),
            form_csrf: form.csrf.clone(),
            to: form.to.clone(),
            subject: form.subject.clone(),
            body: form.body.clone(),
            respond: form.respond.clone(),
            how: form.how.clone(),
            no_reply: form.no_reply.clone().unwrap_or_default(),
            billing: form.billing.clone().unwrap_or_default(),
            ..Pending::default()
        }
    }
}

#[derive(Template)]
#[template(path = "web/resume.html")]
struct ResumePage {
    page: Page,
    csrf: String,
    error: String,
    ask_last_name: bool,
    ask_passcode: bool,
    idle_minutes: i64,
    pending: Pending,
}

#[derive(Template)]
#[template(path = "web/not_sent.html")]
struct NotSentPage {
    page: Page,
    lines: Vec<String>,
    body: String,
}

/// `POST /resume`'s fields: the identity check, and what was being sent.
#[derive(Deserialize)]
pub struct ResumeForm {
    #[serde(flatten)]
    identity: IdentityFields,
    #[serde(flatten)]
    pending: Pending,
}

/// The identity part of the form (flattened forms take strings only).
#[derive(Deserialize)]
struct IdentityFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    birth_date: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    passcode: String,
}

impl WebState {
    /// The answer to a form sent without a live session: the page that keeps its text and
    /// asks who the person is, when the session can be taken up; else the text shown back.
    pub(super) async fn resume_form(&self, headers: &HeaderMap, pending: Pending) -> Response {
        match self.expired_session(headers).await {
            Some((cookie, session))
                if self.form_token_ok("session", &cookie, &pending.form_csrf) =>
            {
                tracing::info!(person = %session.person, "web view: session ran out; keeping a message for after the check");
                self.resume_page(&cookie, String::new(), pending, StatusCode::UNAUTHORIZED)
            }
            _ => self.not_sent(pending.body),
        }
    }

    /// The session of this browser that ran out (idle), if it may be taken up: not ended (a
    /// sign-out, a lockout), within its absolute limit, its person not locked.
    async fn expired_session(&self, headers: &HeaderMap) -> Option<(String, WebSession)> {
        let cookie = session_cookie(headers)?;
        let (session, ended) = self
            .store
            .web_session_record(&session_hash(&cookie))
            .await
            .ok()??;
        let now = self.store.clock().now();
        (!ended && now - session.created_at <= self.session_max).then_some((cookie, session))
    }

    fn resume_page(
        &self,
        cookie: &str,
        error: String,
        pending: Pending,
        status: StatusCode,
    ) -> Response {
        render(
            status,
            ResumePage {
                page: self.frame(),
                csrf: self.form_token("resume", cookie),
                error,
                ask_last_name: self.verify == WebVerify::DobLastname,
                ask_passcode: self.verify == WebVerify::Passcode,
                idle_minutes: self.session_idle / 60,
                pending,
            },
        )
    }

    /// The text back, to copy, with how to sign in again.
    fn not_sent(&self, body: String) -> Response {
        render(
            StatusCode::UNAUTHORIZED,
            NotSentPage {
                page: self.frame(),
                lines: vec![
                    "You are signed out, so your message could not be sent.".into(),
                    format!(
                        "Copy what you wrote, then open the link in the latest email from {} to \
                         sign in again and send it.",
                        self.organization
                    ),
                ],
                body,
            },
        )
    }
}

/// `POST /resume`: the identity check, then the message kept in the form is sent.
pub async fn resume(
    State(state): State<WebState>,
    peer: ConnectInfo<crate::http::Peer>,
    headers: HeaderMap,
    Form(form): Form<ResumeForm>,
) -> Response {
    let ResumeForm { identity, pending } = form;
    let Some((cookie, session)) = state.expired_session(&headers).await else {
        return state.not_sent(pending.body);
    };
    if !state.form_token_ok("resume", &cookie, &identity.csrf)
        || !state.form_token_ok("session", &cookie, &pending.form_csrf)
    {
        return state.forged();
    }
    let person = match state.store.person(&session.address).await {
        Ok(Some(p)) => p,
        Ok(None) => return state.not_sent(pending.body),
        Err(e) => {
            tracing::error!(error = %e, "cannot read a person to take up a session");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    if person.standing.locked_at(state.store.clock().now()) {
        return state.not_sent(pending.body);
    }
    if let Err(wait) = state
        .per_address
        .take(state.client_ip(&peer, &headers))
        .and_then(|()| state.per_person.take(person.id))
    {
        return state.too_many(wait);
    }
    let check = Identity {
        csrf: String::new(),
        birth_date: identity.birth_date,
        last_name: identity.last_name,
        passcode: identity.passcode,
    };
    let Some(on_file) = state.on_file(&person).await else {
        return state.cannot_check();
    };
    match state
        .checked(&person, session.thread, WebState::matches(on_file, &check))
        .await
    {
        Ok(Checked::Passed) => {}
        Ok(Checked::Failed { left }) => {
            return state.resume_page(
                &cookie,
                attempts_left(left),
                pending,
                StatusCode::UNAUTHORIZED,
            );
        }
        // Locked now, or every attempt taken: the text is shown back with why.
        Err(_) => return state.not_sent(pending.body),
    }
    let fresh = match state.open_session(&person, session.participant).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Some(live)) = state
        .store
        .web_session(&session_hash(&fresh), state.session_idle, state.session_max)
        .await
    else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let _ = state.store.web_sign_out(&session_hash(&cookie)).await;
    let mut sent = match pending.kind.as_str() {
        "reply" => {
            let form = ReplyForm {
                csrf: String::new(),
                body: pending.body,
                answers: pending.answers,
            };
            send_reply(&state, &live, &pending.thread, &form).await
        }
        "new" => {
            let form = NewForm {
                csrf: String::new(),
                to: pending.to,
                subject: pending.subject,
                body: pending.body,
                no_reply: (!pending.no_reply.is_empty()).then_some(pending.no_reply),
                respond: pending.respond,
                how: pending.how,
                billing: (!pending.billing.is_empty()).then_some(pending.billing),
            };
            send_new(&state, &live, &form).await
        }
        _ => return state.forged(),
    };
    if let Ok(v) = state.session_cookie_header(&fresh).parse() {
        sent.headers_mut().insert(header::SET_COOKIE, v);
    }
    sent
}
