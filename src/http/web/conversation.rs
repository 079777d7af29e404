//! One conversation as a signed-in person sees it: their messages and the others', nested
//! under what they answer, with what was taken back left in its place, and the reply form.
//! Nothing here answers without a live session, and a person sees only threads they take
//! part in (the inbox is `inbox`, what they can do `actions`, a new message `compose`).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::{Page, WebState, initials, render};
use crate::clock;
use crate::domain::consent::CONVENIENCE_WARNING;
use crate::domain::{MessageId, Mode, ParticipantId, ThreadId};
use crate::store::projection::Viewer;
use crate::store::web::WebSession;
use crate::store::{ParticipantView, ThreadView};

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

/// A time as a person reads it (UTC: the page has no script to know their zone).
pub(super) fn shown(at: i64) -> String {
    let iso = clock::rfc3339(at);
    format!("{} {} UTC", &iso[..10], &iso[11..16])
}

impl WebState {
    /// The thread, if the session's person takes part in it (and was not removed).
    pub(super) async fn thread_of(&self, session: &WebSession, thread: &str) -> Option<ThreadView> {
        let id: ThreadId = thread.parse().ok()?;
        let view = self.store.thread(id).await.ok()?;
        seen_by_me(&view, session)
    }

    pub(super) fn not_found(&self) -> Response {
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
    let mut entries = entries(
        &view,
        my_id,
        &newly_read,
        cancellable.then_some(last_id).flatten(),
    );
    entries.sort_by_key(|(at, _, _)| *at);
    let messages = nest(entries);
    let last_is_mine = view.messages.last().is_some_and(|m| m.author == my_id);
    let also_reading = also_reading(&state, &view, my_id).await;
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

/// A message or a tombstone, with when it was written and what it answers.
type Entry = (i64, Option<MessageId>, MessageItem);

/// The conversation's messages as `me` reads them, and what their authors took back left in
/// its place without content (the others may have seen that something was there);
/// `cancellable`: the one message `me` may still take back.
fn entries(
    view: &ThreadView,
    my_id: ParticipantId,
    newly_read: &[MessageId],
    cancellable: Option<MessageId>,
) -> Vec<Entry> {
    let name_of = |address: &crate::domain::Address, name: &Option<String>, mine: bool| {
        if mine {
            "Me".to_owned()
        } else {
            name.clone().unwrap_or_else(|| address.to_string())
        }
    };
    let mut entries: Vec<Entry> = view
        .messages
        .iter()
        .map(|m| {
            let mine = m.author == my_id;
            let unread = newly_read.contains(&m.id);
            let item = MessageItem {
                id: m.id.to_string(),
                mine,
                withdrawn: false,
                cancellable: Some(m.id) == cancellable,
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
    entries
}

/// The other people outside the practice in the conversation, by the name the practice has
/// for them (as staff would address them).
async fn also_reading(state: &WebState, view: &ThreadView, my_id: ParticipantId) -> Vec<String> {
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
    also_reading
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

/// The conversation as the signed-in person may see it (see [`crate::store::projection`]), if
/// they take part in it.
pub(super) fn seen_by_me(view: &ThreadView, session: &WebSession) -> Option<ThreadView> {
    let me = me_in(view, session)?.id;
    view.seen_by(Viewer::Participant(me))
}

/// The session's person as a participant of `view`, unless they were removed.
pub(super) fn me_in<'v>(view: &'v ThreadView, session: &WebSession) -> Option<&'v ParticipantView> {
    view.participants
        .iter()
        .find(|p| p.address == session.address && !p.revoked)
}

/// What others wrote in `view` that `me` has not seen yet.
pub(super) fn unseen(view: &ThreadView, me: ParticipantId) -> Vec<MessageId> {
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
