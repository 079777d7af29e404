//! A new message from a signed-in person to a member of staff who wrote to them: a new
//! conversation of its own.

use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Page, WebState, render};
use crate::domain::{Mode, ThreadId, Via};
use crate::store::ThreadView;
use crate::store::web::WebSession;

use super::actions::back_to;

/// A member of staff a person may write to.
pub(super) struct StaffItem {
    address: String,
    name: String,
}

#[derive(Template)]
#[template(path = "web/new.html")]
struct NewPage {
    page: Page,
    notice: String,
    staff: Vec<StaffItem>,
    billing_consent: bool,
}

/// The staff participants who wrote in any of `views`, once each.
pub(super) fn staff_in<'v>(views: impl Iterator<Item = &'v ThreadView>) -> Vec<StaffItem> {
    let mut staff: Vec<StaffItem> = Vec::new();
    for view in views {
        for p in &view.participants {
            let wrote = view.messages.iter().any(|m| m.author == p.id);
            if p.role == crate::domain::Role::Staff
                && !p.revoked
                && wrote
                && !staff.iter().any(|s| s.address == p.address.as_str())
            {
                staff.push(StaffItem {
                    address: p.address.to_string(),
                    name: p
                        .display_name
                        .clone()
                        .unwrap_or_else(|| p.address.to_string()),
                });
            }
        }
    }
    staff
}

/// `GET /new`: a new message to a member of staff who wrote to the person before.
pub async fn new_form(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let Some((session, cookie)) = state.session(&headers).await else {
        return state.signed_out();
    };
    let staff = state.staff_of(&session).await;
    if staff.is_empty() {
        return state.not_found();
    }
    render(
        StatusCode::OK,
        NewPage {
            page: state.frame_for(&cookie),
            notice: state.notice.clone(),
            staff,
            billing_consent: state.billing_consent,
        },
    )
}

#[derive(Deserialize, Default)]
pub struct NewForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) to: String,
    #[serde(default)]
    pub(super) subject: String,
    #[serde(default)]
    pub(super) body: String,
    pub(super) no_reply: Option<String>,
    #[serde(default)]
    pub(super) respond: String,
    #[serde(default)]
    pub(super) how: String,
    pub(super) billing: Option<String>,
}

/// `POST /new`: opens a secure thread from the person to the member of staff, who is notified;
/// "no reply needed" archives it for the person at once. Sent after the session ended, it is
/// kept and sent once the person confirmed who they are (see [`super::resume`]).
pub async fn new_message(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<NewForm>,
) -> Response {
    let Some((session, cookie)) = state.session(&headers).await else {
        return state
            .resume_form(&headers, super::resume::Pending::new_message(&form))
            .await;
    };
    if !state.form_token_ok("session", &cookie, &form.csrf) {
        return state.forged();
    }
    send_new(&state, &session, &form).await
}

/// Opens a conversation from the session's person to a member of staff who wrote to them.
pub(super) async fn send_new(state: &WebState, session: &WebSession, form: &NewForm) -> Response {
    let staff = state.staff_of(session).await;
    let Some(to) = staff.iter().find(|s| s.address == form.to.trim()) else {
        return state.not_found();
    };
    let subject =
        crate::domain::text::one_line("subject", &form.subject, crate::domain::text::SUBJECT_MAX)
            .unwrap_or_default();
    let subject = subject.as_str();
    let body = form.body.replace("\r\n", "\n");
    if subject.is_empty() || body.trim().is_empty() || body.len() > 20_000 {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec![
                "Please give a subject (one line) and a message of up to 20,000 characters.".into(),
            ],
        );
    }
    let Ok(staff_address) = crate::domain::Address::parse(&to.address) else {
        return state.not_found();
    };
    // Each new conversation notifies staff: a person opens only so many an hour.
    if let Err(wait) = state.new_per_person.take(session.person) {
        return state.message(
            StatusCode::TOO_MANY_REQUESTS,
            "Please wait before writing again",
            vec![format!(
                "You have written many new messages in the last hour. Please try again in about \
                 {} minutes, or reply in one of your conversations.",
                wait.div_ceil(60)
            )],
        );
    }
    if state.billing_consent && form.billing.is_none() {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec!["Please confirm that you understand this request may be billed.".into()],
        );
    }
    let body = match with_instructions(state, form, &to.name, &body) {
        Ok(body) => body,
        Err(refused) => return *refused,
    };
    let name = state
        .store
        .person(&session.address)
        .await
        .ok()
        .flatten()
        .and_then(|p| p.details.name);
    let created = state
        .store
        .create_thread(crate::store::NewThread {
            subject: subject.to_owned(),
            mode: Mode::Secure,
            author: crate::store::NewParticipant {
                address: session.address.clone(),
                display_name: name,
                role: crate::domain::Role::Recipient,
            },
            others: vec![crate::store::NewParticipant {
                address: staff_address,
                display_name: Some(to.name.clone()),
                role: crate::domain::Role::Staff,
            }],
            body,
            via: Via::Web,
            shared: false,
        })
        .await;
    let posted = match created {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot open a thread from the web view");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    state.wake.notify_one();
    // "No reply needed" files it away for its writer; staff may still answer (and the answer
    // brings it back).
    if form.no_reply.is_some() {
        archive_for_writer(state, session, posted.thread_id).await;
    }
    back_to(posted.thread_id)
}

/// The message as staff will read it: what the person typed, then — under a line they cannot
/// type — the choices they made on the form. A choice outside the form's is a forged form; a
/// typed line that imitates the added ones is refused.
fn with_instructions(
    state: &WebState,
    form: &NewForm,
    to_name: &str,
    body: &str,
) -> Result<String, Box<Response>> {
    // The person's instructions travel with the message, where staff read it.
    let mut instructions = Vec::new();
    match form.respond.as_str() {
        "addressee" => instructions.push(format!("Please respond: only {to_name}")),
        "" => {}
        _ => return Err(Box::new(state.forged())),
    }
    match form.how.as_str() {
        "phone" => instructions.push("Please answer by: a phone call".to_owned()),
        "" => {}
        _ => return Err(Box::new(state.forged())),
    }
    if form.no_reply.is_some() {
        instructions.push("No reply needed".to_owned());
    }
    if state.billing_consent {
        instructions.push("Agreed that answering may be billed".to_owned());
    }
    if crate::domain::text::imitates_added_lines(body) {
        return Err(Box::new(state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec![
                "Your message contains a line that looks like the ones Sealpost adds from the \
                 choices on the form. Please remove it and use the choices instead."
                    .into(),
            ],
        )));
    }
    // What Sealpost adds stands apart from what the person typed, under a line they cannot
    // type (see `domain::text::ADDED_BY_SEALPOST`).
    Ok(if instructions.is_empty() {
        body.trim_end().to_owned()
    } else {
        format!(
            "{}\n\n{}\n{}",
            body.trim_end(),
            crate::domain::text::ADDED_BY_SEALPOST,
            instructions.join("\n")
        )
    })
}

/// Files a new conversation away for its writer ("no reply needed").
async fn archive_for_writer(state: &WebState, session: &WebSession, thread: ThreadId) {
    let mine = state.store.thread(thread).await.ok().and_then(|v| {
        v.participants
            .iter()
            .find(|p| p.address == session.address)
            .map(|p| p.id)
    });
    if let Some(me) = mine
        && let Err(e) = state.store.archive(me, true).await
    {
        tracing::warn!(error = %e, "cannot archive a no-reply-needed conversation");
    }
}
