//! The signed-in person's conversations, most recently active first (archived ones on
//! request).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{Page, WebState, render};
use crate::store::web::WebSession;
use crate::store::{ThreadFilter, ThreadSummary, ThreadView};

use super::compose::{StaffItem, staff_in};
use super::conversation::*;

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

impl WebState {
    /// The person's conversations (those they take part in, not removed), with their
    /// summaries, most recently active first. Each is opened once.
    pub(super) async fn threads_of(
        &self,
        session: &WebSession,
    ) -> Vec<(ThreadSummary, ThreadView)> {
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
    pub(super) async fn staff_of(&self, session: &WebSession) -> Vec<StaffItem> {
        let threads = self.threads_of(session).await;
        staff_in(threads.iter().map(|(_, v)| v))
    }
}
