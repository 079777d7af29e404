//! A signed-in person's conversations: the inbox, one conversation with its reply form, the
//! choice about email (convenience mode), and signing out. Nothing here answers without a
//! live session, and a person sees only threads they take part in.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Page, WebState, initials, render, session_hash};
use crate::clock;
use crate::domain::consent::CONVENIENCE_WARNING;
use crate::domain::{MessageId, Mode, ParticipantId, ThreadId, Via};
use crate::store::projection::Viewer;
use crate::store::web::WebSession;
use crate::store::{Answers, Consent, ParticipantView, ThreadFilter, ThreadSummary, ThreadView};

/// One message as the page shows it (or what is left of one its author took back).
struct MessageItem {
    id: String,
    mine: bool,
    /// Taken back by its author: shown as such, without content.
    withdrawn: bool,
    /// Its author may take it back: theirs, the last one, and nobody read it yet.
    cancellable: bool,
    unread: bool,
    badge: String,
    author: String,
    at: String,
    at_iso: String,
    paragraphs: Vec<String>,
    /// The replies and follow-ups that answer it (directly or further down), oldest first:
    /// shown nested under it, one level deep.
    answers: Vec<MessageItem>,
}

#[derive(Template)]
#[template(path = "web/thread.html")]
struct ThreadPage {
    page: Page,
    notice: String,
    thread_id: String,
    subject: String,
    /// Staff closed it: no reply form, and the person cannot re-open it.
    closed: bool,
    /// The person archived it for themselves.
    archived: bool,
    /// The others outside the practice who read this conversation too (a shared one).
    also_reading: Vec<String>,
    /// The idle limit, in minutes, for the sentence above the reply form.
    idle_minutes: i64,
    messages: Vec<MessageItem>,
    /// The message the reply form answers: the last one shown.
    answers: String,
    reply_label: &'static str,
    convenience_offer: bool,
    consented: bool,
    warning: &'static str,
}

/// One conversation in the inbox.
struct ThreadItem {
    id: String,
    subject: String,
    last: String,
    unread: usize,
    closed: bool,
    archived: bool,
}

#[derive(Template)]
#[template(path = "web/inbox.html")]
struct InboxPage {
    page: Page,
    notice: String,
    threads: Vec<ThreadItem>,
    unread: usize,
    all: bool,
    /// Someone of the practice wrote to them: they may write a new message.
    can_write: bool,
}

/// A member of staff a person may write to.
struct StaffItem {
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

/// A time as a person reads it (UTC: the page has no script to know their zone).
fn shown(at: i64) -> String {
    let iso = clock::rfc3339(at);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

impl WebState {
    /// The thread, if the session's person takes part in it (and was not removed).
    async fn thread_of(&self, session: &WebSession, thread: &str) -> Option<ThreadView> {
        let id: ThreadId = thread.parse().ok()?;
        let view = self.store.thread(id).await.ok()?;
        seen_by_me(&view, session)
    }

    fn not_found(&self) -> Response {
        self.message(
            StatusCode::NOT_FOUND,
            "Conversation not found",
            vec!["There is no such conversation among yours.".into()],
        )
    }
}

/// `GET /t/<thread>`: the conversation, oldest first; what others wrote is marked read.
pub async fn thread(
    State(state): State<WebState>,
    Path(thread): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((session, cookie)) = state.session(&headers).await else {
        return state.signed_out();
    };
    let Some(view) = state.thread_of(&session, &thread).await else {
        return state.not_found();
    };
    let me = me_in(&view, &session).expect("thread_of checked it");
    let my_id = me.id;
    let recipient = me.role == crate::domain::Role::Recipient;
    let consented = me.consented == Some(true);
    let archived = me.archived;
    let newly_read = unseen(&view, my_id);
    // Only one's own last message can be taken back, and only while nobody has it (the store
    // decides: read by anyone, delivered with its content, answered).
    let last_id = view.messages.last().map(|m| m.id);
    let cancellable = match view.messages.last() {
        Some(last) if last.author == my_id && !view.closed => matches!(
            state.store.cancel_refusal(view.id, last.id, my_id).await,
            Ok(None)
        ),
        _ => false,
    };
    let name_of = |address: &crate::domain::Address, name: &Option<String>, mine: bool| {
        if mine {
            "Me".to_owned()
        } else {
            name.clone().unwrap_or_else(|| address.to_string())
        }
    };
    let mut entries: Vec<(i64, Option<MessageId>, MessageItem)> = view
        .messages
        .iter()
        .map(|m| {
            let mine = m.author == my_id;
            let unread = newly_read.contains(&m.id);
            let item = MessageItem {
                id: m.id.to_string(),
                mine,
                withdrawn: false,
                cancellable: cancellable && Some(m.id) == last_id,
                unread,
                badge: if mine {
                    "Me".into()
                } else {
                    initials(m.author_name.as_deref(), m.author_address.as_str())
                },
                author: name_of(&m.author_address, &m.author_name, mine),
                at: shown(m.created_at),
                at_iso: clock::rfc3339(m.created_at),
                paragraphs: m
                    .body
                    .split("\n\n")
                    .map(|p| p.trim_matches('\n').to_owned())
                    .filter(|p| !p.is_empty())
                    .collect(),
                answers: Vec::new(),
            };
            (m.created_at, m.answers, item)
        })
        .collect();
    // What their authors took back stays in its place, without content: the others may have
    // seen that something was there.
    entries.extend(view.withdrawn.iter().map(|w| {
        let mine = w.author == my_id;
        let item = MessageItem {
            id: w.id.to_string(),
            mine,
            withdrawn: true,
            cancellable: false,
            unread: false,
            badge: if mine {
                "Me".into()
            } else {
                initials(w.author_name.as_deref(), w.author_address.as_str())
            },
            author: name_of(&w.author_address, &w.author_name, mine),
            at: shown(w.created_at),
            at_iso: clock::rfc3339(w.created_at),
            paragraphs: vec![format!(
                "This message was taken back by {} on {}.",
                if mine { "you" } else { "its author" },
                shown(w.withdrawn_at)
            )],
            answers: Vec::new(),
        };
        (w.created_at, w.answers, item)
    }));
    entries.sort_by_key(|(at, _, _)| *at);
    let messages = nest(entries);
    let last_is_mine = view.messages.last().is_some_and(|m| m.author == my_id);
    let mut also_reading = Vec::new();
    for p in view
        .participants
        .iter()
        .filter(|p| p.role == crate::domain::Role::Recipient && !p.revoked && p.id != my_id)
    {
        // The name the practice has for them, as staff would address them.
        let directory = state.store.person(&p.address).await.ok().flatten();
        also_reading.push(
            directory
                .and_then(|d| d.details.name)
                .or_else(|| p.display_name.clone())
                .unwrap_or_else(|| p.address.to_string()),
        );
    }
    let page = ThreadPage {
        page: state.frame_for(&cookie),
        notice: state.notice.clone(),
        thread_id: view.id.to_string(),
        subject: view.subject.clone(),
        closed: view.closed,
        archived,
        also_reading,
        idle_minutes: state.session_idle / 60,
        messages,
        answers: last_id.map(|m| m.to_string()).unwrap_or_default(),
        // The seed's wording: a reply answers the practice, a follow-up adds to one's own.
        reply_label: if last_is_mine {
            "Send a follow-up"
        } else {
            "Reply"
        },
        convenience_offer: recipient && view.mode == Mode::Convenience && !view.closed,
        consented,
        warning: CONVENIENCE_WARNING,
    };
    let response = render(StatusCode::OK, page);
    if let Err(e) = state.store.mark_read(my_id, &newly_read).await {
        tracing::warn!(error = %e, "cannot record read receipts");
    }
    response
}

/// Puts each message under the first message of its exchange: the one reached by following
/// what it answers back to a message that answers nothing shown. `entries` are the
/// conversation's messages (tombstones included) in order, each with what it answers.
fn nest(entries: Vec<(i64, Option<MessageId>, MessageItem)>) -> Vec<MessageItem> {
    use std::collections::HashMap;
    let ids: Vec<String> = entries.iter().map(|(_, _, m)| m.id.clone()).collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let parents: Vec<Option<usize>> = entries
        .iter()
        .map(|(_, answers, _)| answers.and_then(|a| index.get(a.to_string().as_str()).copied()))
        .collect();
    // A message answers only earlier ones, so following the links always ends.
    let root = |mut i: usize| {
        while let Some(parent) = parents[i]
            && parent < i
        {
            i = parent;
        }
        i
    };
    let roots: Vec<usize> = (0..entries.len()).map(root).collect();
    let mut nested: Vec<MessageItem> = Vec::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    for (i, (_, _, item)) in entries.into_iter().enumerate() {
        match at.get(&roots[i]) {
            Some(&top) if roots[i] != i => nested[top].answers.push(item),
            _ => {
                at.insert(i, nested.len());
                nested.push(item);
            }
        }
    }
    nested
}

#[derive(Deserialize)]
pub struct InboxQuery {
    all: Option<String>,
}

/// `GET /inbox`: the person's conversations, most recently active first; the ones they
/// archived only when asked for all (closed ones stay, marked: the person did not file them).
pub async fn inbox(
    State(state): State<WebState>,
    Query(q): Query<InboxQuery>,
    headers: HeaderMap,
) -> Response {
    let Some((session, cookie)) = state.session(&headers).await else {
        return state.signed_out();
    };
    let all = q.all.is_some();
    let mine = state.threads_of(&session).await;
    let can_write = !staff_in(mine.iter().map(|(_, v)| v)).is_empty();
    let mut threads = Vec::new();
    let mut unread_total = 0;
    for (t, view) in &mine {
        let Some(me) = me_in(view, &session) else {
            continue;
        };
        if me.archived && !all {
            continue;
        }
        let unread = unseen(view, me.id).len();
        unread_total += unread;
        threads.push(ThreadItem {
            id: t.id.to_string(),
            subject: t.subject.clone(),
            last: shown(t.last_activity_at),
            unread,
            closed: t.closed,
            archived: me.archived,
        });
    }
    render(
        StatusCode::OK,
        InboxPage {
            page: state.frame_for(&cookie),
            notice: state.notice.clone(),
            threads,
            unread: unread_total,
            all,
            can_write,
        },
    )
}

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

impl WebState {
    /// The person's conversations (those they take part in, not removed), with their
    /// summaries, most recently active first. Each is opened once.
    async fn threads_of(&self, session: &WebSession) -> Vec<(ThreadSummary, ThreadView)> {
        let filter = ThreadFilter {
            closed: None,
            participant: Some(session.address.clone()),
            updated_since: None,
            after: None,
            limit: 200,
        };
        let mut summaries = self.store.threads_page(&filter).await.unwrap_or_default();
        summaries.sort_by_key(|t| std::cmp::Reverse(t.last_activity_at));
        let mut out = Vec::with_capacity(summaries.len());
        for t in summaries {
            if let Ok(view) = self.store.thread(t.id).await
                && let Some(view) = seen_by_me(&view, session)
            {
                out.push((t, view));
            }
        }
        out
    }

    /// Staff who wrote to the person (whom they may write to anew).
    async fn staff_of(&self, session: &WebSession) -> Vec<StaffItem> {
        let threads = self.threads_of(session).await;
        staff_in(threads.iter().map(|(_, v)| v))
    }
}

/// The session's person as a participant of `view`, unless they were removed.
/// The conversation as the signed-in person may see it (see [`crate::store::projection`]), if
/// they take part in it.
fn seen_by_me(view: &ThreadView, session: &WebSession) -> Option<ThreadView> {
    let me = me_in(view, session)?.id;
    view.seen_by(Viewer::Participant(me))
}

fn me_in<'v>(view: &'v ThreadView, session: &WebSession) -> Option<&'v ParticipantView> {
    view.participants
        .iter()
        .find(|p| p.address == session.address && !p.revoked)
}

/// What others wrote in `view` that `me` has not seen yet.
fn unseen(view: &ThreadView, me: ParticipantId) -> Vec<MessageId> {
    view.messages
        .iter()
        .filter(|m| m.author != me)
        .filter(|m| {
            !view
                .reads
                .iter()
                .any(|r| r.message == m.id && r.participant == me)
        })
        .map(|m| m.id)
        .collect()
}

/// The staff participants who wrote in any of `views`, once each.
fn staff_in<'v>(views: impl Iterator<Item = &'v ThreadView>) -> Vec<StaffItem> {
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

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    message: String,
}

/// The session, its form token checked, and the thread it names among the person's.
async fn acting(
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

fn back_to(thread: ThreadId) -> Response {
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
    // The person's instructions travel with the message, where staff read it.
    let mut instructions = Vec::new();
    match form.respond.as_str() {
        "addressee" => instructions.push(format!("Please respond: only {}", to.name)),
        "" => {}
        _ => return state.forged(),
    }
    match form.how.as_str() {
        "phone" => instructions.push("Please answer by: a phone call".to_owned()),
        "" => {}
        _ => return state.forged(),
    }
    if form.no_reply.is_some() {
        instructions.push("No reply needed".to_owned());
    }
    if state.billing_consent {
        instructions.push("Agreed that answering may be billed".to_owned());
    }
    if crate::domain::text::imitates_added_lines(&body) {
        return state.message(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            vec![
                "Your message contains a line that looks like the ones Sealpost adds from the \
                 choices on the form. Please remove it and use the choices instead."
                    .into(),
            ],
        );
    }
    // What Sealpost adds stands apart from what the person typed, under a line they cannot
    // type (see `domain::text::ADDED_BY_SEALPOST`).
    let body = if instructions.is_empty() {
        body.trim_end().to_owned()
    } else {
        format!(
            "{}\n\n{}\n{}",
            body.trim_end(),
            crate::domain::text::ADDED_BY_SEALPOST,
            instructions.join("\n")
        )
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
        let mine = state
            .store
            .thread(posted.thread_id)
            .await
            .ok()
            .and_then(|v| {
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
    back_to(posted.thread_id)
}
