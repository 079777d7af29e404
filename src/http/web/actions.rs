//! What a signed-in person does in a conversation: reply, archive it for themselves or bring
//! it back, take back their last message, choose about email, sign out.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{WebState, session_hash};
use crate::domain::consent::CONVENIENCE_WARNING;
use crate::domain::{ThreadId, Via};
use crate::store::web::WebSession;
use crate::store::{Answers, Consent, ThreadView};

use super::conversation::*;

#[derive(Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) body: String,
    /// The message it was written under (the last one shown).
    #[serde(default)]
    pub(super) answers: String,
}

/// `POST /t/<thread>/reply`: files the message (via the web) and notifies the others, as an
/// email reply would. Sent after the session ended, it is kept on the page that asks the
/// person to confirm who they are, and sent then (see [`super::resume`]).
pub async fn reply(
    State(state): State<WebState>,
    Path(thread): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ReplyForm>,
) -> Response {
    let Some((session, cookie)) = state.session(&headers).await else {
        return state
            .resume_form(&headers, super::resume::Pending::reply(&thread, &form))
            .await;
    };
    if !state.form_token_ok("session", &cookie, &form.csrf) {
        return state.forged();
    }
    send_reply(&state, &session, &thread, &form).await
}

/// Files a reply of the session's person into `thread`.
pub(super) async fn send_reply(
    state: &WebState,
    session: &WebSession,
    thread: &str,
    form: &ReplyForm,
) -> Response {
    let Some(view) = state.thread_of(session, thread).await else {
        return state.not_found();
    };
    let body = form.body.replace("\r\n", "\n");
    if body.trim().is_empty() || body.len() > 20_000 {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec!["Please write a message of up to 20,000 characters.".into()],
        );
    }
    if crate::domain::text::imitates_added_lines(&body) {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec![
                "Your message contains a line that looks like the ones Sealpost adds. Please \
                 remove it."
                    .into(),
            ],
        );
    }
    match state
        .store
        .post_answering(
            view.id,
            &session.address,
            body.trim_end(),
            Via::Web,
            form.answers
                .parse()
                .map_or(Answers::Nothing, Answers::Message),
        )
        .await
    {
        Ok(posted) => {
            state.wake.notify_one();
            tracing::info!(thread = %view.id, message_id = %posted.message_id, "web view: message filed");
            (
                StatusCode::SEE_OTHER,
                [(
                    header::LOCATION,
                    format!("/t/{}#m-{}", view.id, posted.message_id),
                )],
            )
                .into_response()
        }
        Err(crate::store::StoreError::ThreadClosed(_)) => state.message(
            StatusCode::CONFLICT,
            "This conversation is closed",
            vec!["Your message was not sent.".into()],
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot file a message from the web view");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    thread: String,
    #[serde(default)]
    convenience: String,
}

/// `POST /consent`: the person's one-click choice about receiving content by email, recorded
/// with the warning they were shown.
pub async fn consent(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let (session, view) = match acting(&state, &headers, &form.csrf, &form.thread).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let convenience = match form.convenience.as_str() {
        "yes" => true,
        "no" => false,
        _ => return state.forged(),
    };
    let recorded = state
        .store
        .set_consent(Consent {
            address: session.address.clone(),
            convenience,
            text: CONVENIENCE_WARNING.to_owned(),
            by: "web".into(),
        })
        .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "cannot record a choice about email");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    back_to(view.id)
}

#[derive(Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /signout`: ends the session here and in the browser.
pub async fn sign_out(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Response {
    let Some((_, cookie)) = state.session(&headers).await else {
        return state.signed_out();
    };
    if !state.form_token_ok("session", &cookie, &form.csrf) {
        return state.forged();
    }
    if let Err(e) = state.store.web_sign_out(&session_hash(&cookie)).await {
        tracing::error!(error = %e, "cannot end a web session");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut page = state.message(
        StatusCode::OK,
        "You are signed out",
        vec!["To read your messages again, open the link in the latest email about them.".into()],
    );
    if let Ok(v) = state.clear_cookie_header().parse() {
        page.headers_mut().insert(header::SET_COOKIE, v);
    }
    page
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    message: String,
}

/// The session, its form token checked, and the thread it names among the person's.
pub(super) async fn acting(
    state: &WebState,
    headers: &HeaderMap,
    csrf: &str,
    thread: &str,
) -> Result<(WebSession, ThreadView), Response> {
    let Some((session, cookie)) = state.session(headers).await else {
        return Err(state.signed_out());
    };
    if !state.form_token_ok("session", &cookie, csrf) {
        return Err(state.forged());
    }
    let Some(view) = state.thread_of(&session, thread).await else {
        return Err(state.not_found());
    };
    Ok((session, view))
}

pub(super) fn back_to(thread: ThreadId) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/t/{thread}"))],
    )
        .into_response()
}

/// `POST /t/<thread>/archive`: files the conversation away for this person only (shown again
/// under "all", and back in the inbox with the next message). It stays open for everyone.
pub async fn archive(
    State(state): State<WebState>,
    Path(thread): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    set_archived(&state, &headers, &form, &thread, true).await
}

/// `POST /t/<thread>/reopen`: moves a conversation the person archived back to their inbox.
/// A conversation staff closed stays closed: only staff re-open it.
pub async fn reopen(
    State(state): State<WebState>,
    Path(thread): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    set_archived(&state, &headers, &form, &thread, false).await
}

/// Archives a conversation for the session's person, or moves it back.
async fn set_archived(
    state: &WebState,
    headers: &HeaderMap,
    form: &ActionForm,
    thread: &str,
    archived: bool,
) -> Response {
    let (session, view) = match acting(state, headers, &form.csrf, thread).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let Some(me) = me_in(&view, &session) else {
        return state.not_found();
    };
    match state.store.archive(me.id, archived).await {
        Ok(()) => back_to(view.id),
        Err(e) => {
            tracing::error!(error = %e, archived, "cannot archive or move back a conversation");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

/// `POST /t/<thread>/cancel`: takes back one's own last message while nobody acted on it.
pub async fn cancel(
    State(state): State<WebState>,
    Path(thread): Path<String>,
    headers: HeaderMap,
    Form(form): Form<ActionForm>,
) -> Response {
    let (session, view) = match acting(&state, &headers, &form.csrf, &thread).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let Ok(message) = form.message.parse() else {
        return state.not_found();
    };
    let Some(me) = view
        .participants
        .iter()
        .find(|p| p.address == session.address)
    else {
        return state.not_found();
    };
    match state.store.cancel_message(view.id, message, me.id).await {
        Ok(()) => back_to(view.id),
        Err(crate::store::StoreError::CannotCancel(why)) => state.message(
            StatusCode::CONFLICT,
            "This message can no longer be taken back",
            vec![
                format!("The practice has it already: {why}."),
                "If you need to correct it, send a follow-up message.".into(),
            ],
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot cancel a message");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
