//! `/v1/threads`: open a thread with its first message, read it, post into it, and see what
//! became of its notifications.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiQuery, ApiState, Caller};
use crate::clock;
use crate::domain::{Address, MessageId, Mode, ParticipantId, Role, ThreadId, Via};
use crate::http::problem::Problem;
use crate::store::projection::Viewer;
use crate::store::{
    Conversation, MessageView, NewParticipant, NewThread, NotificationRecord, ParticipantView,
    Posted, ThreadFilter, ThreadSummary, ThreadView,
};

/// Someone taking part: an address and, optionally, the name to show.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Who {
    #[schema(example = "jane@example.net", format = Email)]
    pub address: String,
    pub name: Option<String>,
}

/// A new thread and its first message, written by a member of staff.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewThreadRequest {
    #[schema(min_length = 1)]
    pub subject: String,
    /// secure (default: policy.default_mode) or convenience.
    pub mode: Option<String>,
    /// The staff member who writes.
    pub from: Who,
    /// The recipients (at least one). Each one outside the practice gets a conversation of
    /// their own (staff in `to` are in each), unless `shared`.
    #[schema(min_items = 1)]
    pub to: Vec<Who>,
    #[schema(min_length = 1)]
    pub body: String,
    /// The recipients outside the practice read one conversation together (a family, a
    /// couple), each seeing everything written in it. Default false.
    pub shared: Option<bool>,
}

/// What a post created.
#[derive(Debug, Serialize, ToSchema)]
pub struct PostedResponse {
    pub thread_id: String,
    pub message_id: String,
    /// One per other participant.
    pub notifications: Vec<String>,
}

/// What a new message created: the first conversation at the top (as before several
/// recipients made several), and every conversation in `conversations`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedResponse {
    #[serde(flatten)]
    pub first: PostedResponse,
    /// One per recipient outside the practice (one in all when `shared`), in the order of `to`.
    pub conversations: Vec<ConversationCreated>,
}

/// One conversation a new message opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationCreated {
    pub thread_id: String,
    pub message_id: String,
    pub notifications: Vec<String>,
    /// Its recipients.
    pub to: Vec<String>,
    pub shared: bool,
}

impl ConversationCreated {
    /// One conversation a new message opened; `shared_asked`: the sender asked for one shared
    /// conversation (it is one only with several recipients).
    pub fn new(c: Conversation, shared_asked: bool) -> ConversationCreated {
        ConversationCreated {
            shared: c.to.len() > 1 && shared_asked,
            to: c.to.iter().map(ToString::to_string).collect(),
            thread_id: c.posted.thread_id.to_string(),
            message_id: c.posted.message_id.to_string(),
            notifications: c
                .posted
                .notifications
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

impl From<Posted> for PostedResponse {
    fn from(p: Posted) -> PostedResponse {
        PostedResponse {
            thread_id: p.thread_id.to_string(),
            message_id: p.message_id.to_string(),
            notifications: p.notifications.iter().map(ToString::to_string).collect(),
        }
    }
}

/// A message to post as a participant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    /// The participant who writes.
    #[schema(format = Email)]
    pub from: String,
    #[schema(min_length = 1)]
    pub body: String,
}

/// A thread in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadItem {
    pub thread_id: String,
    pub subject: String,
    pub mode: String,
    /// open or closed.
    pub status: String,
    pub created_at: String,
    pub participants: i64,
    pub messages: i64,
    /// Replies held for review that name this thread.
    pub held: i64,
    pub last_activity: String,
}

impl From<ThreadSummary> for ThreadItem {
    fn from(t: ThreadSummary) -> ThreadItem {
        ThreadItem {
            thread_id: t.id.to_string(),
            subject: t.subject,
            mode: t.mode.as_str().to_owned(),
            status: if t.closed { "closed" } else { "open" }.to_owned(),
            created_at: clock::rfc3339(t.created_at),
            participants: t.participants,
            messages: t.messages,
            held: t.held,
            last_activity: clock::rfc3339(t.last_activity_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Participant {
    pub participant_id: String,
    pub address: String,
    pub name: Option<String>,
    /// staff or recipient.
    pub role: String,
    pub removed: bool,
    /// Whether their notifications carry content.
    pub content_by_email: bool,
    /// They archived the conversation for themselves (it stays open; the next message brings
    /// it back for them).
    pub archived: bool,
}

impl Participant {
    /// Participant `p` of `view`, as the API shows them.
    pub fn of(view: &ThreadView, p: &ParticipantView) -> Participant {
        Participant {
            participant_id: p.id.to_string(),
            address: p.address.to_string(),
            name: p.display_name.clone(),
            role: p.role.as_str().to_owned(),
            removed: p.revoked,
            content_by_email: view.content_by_email(p),
            archived: p.archived,
        }
    }

    /// The participant known by `id` in `view`, if any.
    pub fn find(view: &ThreadView, id: ParticipantId) -> Option<Participant> {
        view.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| Participant::of(view, p))
    }
}

/// A message its author took back before anyone had it: where it was, never what it said.
#[derive(Debug, Serialize, ToSchema)]
pub struct WithdrawnMessage {
    pub message_id: String,
    pub from: String,
    pub created_at: String,
    pub withdrawn_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub message_id: String,
    pub from: String,
    pub body: String,
    /// cli, api, smtp, imap or web.
    pub via: String,
    pub created_at: String,
    /// What sender authentication found, for a reply that came by email.
    pub auth: Option<String>,
    /// The message it answers (a reply's In-Reply-To, or the message a web-view reply was
    /// written under), when known.
    pub answers: Option<String>,
    /// Who saw it on the secure web view, and when (first time).
    pub read_by: Vec<ReadBy>,
}

/// A read receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadBy {
    pub address: String,
    pub read_at: String,
}

impl Message {
    /// A message of `view`, with its read receipts.
    fn of(view: &ThreadView, m: MessageView) -> Message {
        let read_by = view
            .read_by(m.id)
            .into_iter()
            .map(|(a, at)| ReadBy {
                address: a.to_string(),
                read_at: clock::rfc3339(at),
            })
            .collect();
        Message {
            read_by,
            ..Message::from(m)
        }
    }
}

impl From<MessageView> for Message {
    fn from(m: MessageView) -> Message {
        Message {
            read_by: Vec::new(),
            answers: m.answers.map(|a| a.to_string()),
            message_id: m.id.to_string(),
            from: m.author_address.to_string(),
            body: m.body,
            via: m.via.as_str().to_owned(),
            created_at: clock::rfc3339(m.created_at),
            auth: m.auth,
        }
    }
}

/// A thread with its participants and messages.
#[derive(Debug, Serialize, ToSchema)]
pub struct Thread {
    pub thread_id: String,
    pub subject: String,
    pub mode: String,
    /// open or closed.
    pub status: String,
    pub created_at: String,
    pub held: i64,
    /// Several people outside the practice read it together, on purpose.
    pub shared: bool,
    pub participants: Vec<Participant>,
    pub messages: Vec<Message>,
    /// Messages their authors took back.
    pub withdrawn: Vec<WithdrawnMessage>,
}

impl From<ThreadView> for Thread {
    fn from(v: ThreadView) -> Thread {
        let messages = v
            .messages
            .iter()
            .cloned()
            .map(|m| Message::of(&v, m))
            .collect();
        let participants = v
            .participants
            .iter()
            .map(|p| Participant::of(&v, p))
            .collect();
        Thread {
            thread_id: v.id.to_string(),
            subject: v.subject,
            mode: v.mode.as_str().to_owned(),
            status: if v.closed { "closed" } else { "open" }.to_owned(),
            created_at: clock::rfc3339(v.created_at),
            held: v.held,
            shared: v.shared,
            withdrawn: v
                .withdrawn
                .iter()
                .map(|w| WithdrawnMessage {
                    message_id: w.id.to_string(),
                    from: w.author_address.to_string(),
                    created_at: clock::rfc3339(w.created_at),
                    withdrawn_at: clock::rfc3339(w.withdrawn_at),
                })
                .collect(),
            participants,
            messages,
        }
    }
}

/// One notification: the "direct status" of a message to one recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct Notification {
    pub notification_id: String,
    pub thread_id: String,
    /// The message it announces; null for a content-free notice.
    pub message_id: Option<String>,
    pub recipient: String,
    /// message, or notice-… for a content-free notice.
    pub kind: String,
    pub mode: String,
    /// queued, sent, deferred, failed, bounced, cancelled or suppressed.
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    /// When a queued or deferred notification is tried next.
    pub next_attempt_at: Option<String>,
    pub sent_at: Option<String>,
    /// The relay's answer when it took the message.
    pub relay_reply: Option<String>,
    /// How the connection to the relay was protected (e.g. TLSv1.3), once sent.
    pub tls: Option<String>,
}

fn thread_id(text: &str) -> Result<ThreadId, Problem> {
    text.parse()
        .map_err(|_| Problem::not_found(format!("no thread {text}")))
}

fn who(field: &str, w: Who, role: Role) -> Result<NewParticipant, Problem> {
    let address = Address::parse(&w.address)
        .map_err(|e| Problem::invalid(field, format!("{}: {e}", w.address)))?;
    let display_name = match w.name {
        Some(n) => {
            crate::domain::person::text("name", &n).map_err(|e| Problem::invalid(field, e))?
        }
        None => None,
    };
    Ok(NewParticipant {
        address,
        display_name,
        role,
    })
}

/// A page of threads, and where the next one starts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadPage {
    pub items: Vec<ThreadItem>,
    /// Pass as `cursor` for the next page; null on the last one.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// open or closed.
    pub status: Option<String>,
    /// Only threads with this participant (an email address).
    pub participant: Option<String>,
    /// Only threads active at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    pub updated_since: Option<String>,
    /// From a previous page's next_cursor.
    pub cursor: Option<String>,
    /// Threads per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// The cursor after `t`: where it stands in the newest-first order, opaque to clients.
fn cursor_after(t: &ThreadSummary) -> String {
    data_encoding::BASE64URL_NOPAD.encode(format!("t{}", t.seq).as_bytes())
}

fn parse_cursor(text: &str) -> Option<i64> {
    let raw = data_encoding::BASE64URL_NOPAD
        .decode(text.as_bytes())
        .ok()?;
    String::from_utf8(raw).ok()?.strip_prefix('t')?.parse().ok()
}

/// List threads, newest first, a page at a time. Threads created while a client pages
/// through do not shift the pages it has not read yet.
#[utoipa::path(get, path = "/v1/threads", tag = "threads", params(ListQuery),
    responses((status = 200, body = ThreadPage), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list(
    State(state): State<ApiState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<axum::Json<ThreadPage>, Problem> {
    let closed = match q.status.as_deref() {
        None => None,
        Some("open") => Some(false),
        Some("closed") => Some(true),
        Some(other) => {
            return Err(Problem::invalid(
                "status",
                format!("'{other}': expected open or closed"),
            ));
        }
    };
    let participant = q
        .participant
        .as_deref()
        .map(|a| {
            Address::parse(a).map_err(|e| Problem::invalid("participant", format!("{a}: {e}")))
        })
        .transpose()?;
    let updated_since = q
        .updated_since
        .as_deref()
        .map(|t| {
            clock::parse_rfc3339(t).ok_or_else(|| {
                Problem::invalid("updated_since", format!("'{t}' is not an RFC 3339 time"))
            })
        })
        .transpose()?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| {
            parse_cursor(c).ok_or_else(|| Problem::invalid("cursor", "not a cursor this API gave"))
        })
        .transpose()?;
    let limit = match q.limit {
        None => 50,
        Some(n @ 1..=200) => n as usize,
        Some(n) => return Err(Problem::invalid("limit", format!("{n}: expected 1 to 200"))),
    };
    let filter = ThreadFilter {
        closed,
        participant,
        updated_since,
        after,
        // One more than asked, to know whether there is a next page.
        limit: limit + 1,
    };
    let mut threads = state.store.threads_page(&filter).await?;
    let more = threads.len() > limit;
    threads.truncate(limit);
    let next_cursor = more.then(|| threads.last().map(cursor_after)).flatten();
    Ok(axum::Json(ThreadPage {
        items: threads.into_iter().map(ThreadItem::from).collect(),
        next_cursor,
    }))
}

/// Open a conversation with its first message; each recipient is notified. Several recipients
/// outside the practice get a conversation each, unless `shared`: the answer lists them all.
#[utoipa::path(post, path = "/v1/threads", tag = "threads", request_body = NewThreadRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: the same request with the same key within 24 hours gets the first answer again")),
    responses((status = 201, body = CreatedResponse), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<ApiState>,
    ApiJson(req): ApiJson<NewThreadRequest>,
) -> Result<impl IntoResponse, Problem> {
    let subject =
        crate::domain::text::one_line("subject", &req.subject, crate::domain::text::SUBJECT_MAX)
            .map_err(|e| Problem::invalid("subject", e))?;
    let mode = match req.mode.as_deref() {
        Some(m) => m
            .parse::<Mode>()
            .map_err(|e| Problem::invalid("mode", format!("{e}")))?,
        None => state.default_mode,
    };
    if req.to.is_empty() {
        return Err(Problem::invalid("to", "name at least one recipient"));
    }
    let author = who("from", req.from, Role::Staff)?;
    let others = req
        .to
        .into_iter()
        .map(|w| who("to", w, Role::Recipient))
        .collect::<Result<Vec<_>, _>>()?;
    let made = state
        .store
        .start_conversations(NewThread {
            subject,
            mode,
            author,
            others,
            body: req.body,
            via: Via::Api,
            shared: req.shared.unwrap_or(false),
        })
        .await?;
    state.wake.notify_one();
    let conversations: Vec<ConversationCreated> = made
        .into_iter()
        .map(|c| ConversationCreated::new(c, req.shared == Some(true)))
        .collect();
    let first = conversations
        .first()
        .map(|c| PostedResponse {
            thread_id: c.thread_id.clone(),
            message_id: c.message_id.clone(),
            notifications: c.notifications.clone(),
        })
        .ok_or_else(|| Problem::invalid("to", "name at least one recipient"))?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedResponse {
            first,
            conversations,
        }),
    ))
}

/// One thread, with its participants and messages (opened).
#[utoipa::path(get, path = "/v1/threads/{thread_id}", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Thread), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Thread>, Problem> {
    let view = state
        .store
        .thread_for(thread_id(&id)?, Viewer::Practice)
        .await?;
    read_by_portal(&state, caller, view.messages.iter().map(|m| m.id)).await?;
    Ok(axum::Json(view.into()))
}

/// Records that the portal (its API key) read these messages: staff reads are recorded, and a
/// message read can no longer be taken back by its author.
async fn read_by_portal(
    state: &ApiState,
    caller: Caller,
    messages: impl Iterator<Item = MessageId>,
) -> Result<(), Problem> {
    let ids: Vec<MessageId> = messages.collect();
    state
        .store
        .record_access(&ids, &format!("api:{}", caller.key))
        .await?;
    Ok(())
}

/// Post a message into an open thread as one of its participants.
#[utoipa::path(post, path = "/v1/threads/{thread_id}/messages", tag = "threads", request_body = NewMessage,
    params(("thread_id" = String, Path, description = "16 hexadecimal digits"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: the same request with the same key within 24 hours gets the first answer again")),
    responses((status = 201, body = PostedResponse), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn post_message(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(msg): ApiJson<NewMessage>,
) -> Result<impl IntoResponse, Problem> {
    let thread = thread_id(&id)?;
    let from = Address::parse(&msg.from)
        .map_err(|e| Problem::invalid("from", format!("{}: {e}", msg.from)))?;
    let posted = state
        .store
        .post_message(thread, &from, &msg.body, Via::Api)
        .await?;
    state.wake.notify_one();
    Ok((
        StatusCode::CREATED,
        axum::Json(PostedResponse::from(posted)),
    ))
}

/// The notifications of a thread and where each stands.
#[utoipa::path(get, path = "/v1/threads/{thread_id}/notifications", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Vec<Notification>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn notifications(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Notification>>, Problem> {
    let thread = thread_id(&id)?;
    // A thread that does not exist is a 404, not an empty list.
    state.store.thread_for(thread, Viewer::Practice).await?;
    let rows = state.store.list_notifications(None, Some(thread)).await?;
    Ok(axum::Json(
        rows.into_iter().map(Notification::from).collect(),
    ))
}

impl From<NotificationRecord> for Notification {
    fn from(n: NotificationRecord) -> Notification {
        Notification {
            notification_id: n.id.to_string(),
            thread_id: n.thread_id.to_string(),
            message_id: n.message_id.map(|m| m.to_string()),
            recipient: n.recipient,
            kind: n.kind,
            mode: n.mode.as_str().to_owned(),
            status: n.status.as_str().to_owned(),
            attempts: n.attempts,
            last_error: n.last_error,
            created_at: clock::rfc3339(n.created_at),
            next_attempt_at: n.next_attempt_at.map(clock::rfc3339),
            sent_at: n.sent_at.map(clock::rfc3339),
            relay_reply: n.relay_reply,
            tls: n.tls,
        }
    }
}

/// The messages of a thread, oldest first (opened).
#[utoipa::path(get, path = "/v1/threads/{thread_id}/messages", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Vec<Message>), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn messages(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Message>>, Problem> {
    let view = state
        .store
        .thread_for(thread_id(&id)?, Viewer::Practice)
        .await?;
    read_by_portal(&state, caller, view.messages.iter().map(|m| m.id)).await?;
    Ok(axum::Json(
        view.messages
            .iter()
            .cloned()
            .map(|m| Message::of(&view, m))
            .collect(),
    ))
}

/// One message with its notifications: the "direct status" of each recipient.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageWithStatus {
    #[serde(flatten)]
    pub message: Message,
    pub notifications: Vec<Notification>,
}

/// One message of a thread, with where each of its notifications stands.
#[utoipa::path(get, path = "/v1/threads/{thread_id}/messages/{message_id}", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits"),
        ("message_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = MessageWithStatus), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn message(
    State(state): State<ApiState>,
    Extension(caller): Extension<Caller>,
    Path((id, message)): Path<(String, String)>,
) -> Result<axum::Json<MessageWithStatus>, Problem> {
    let thread = thread_id(&id)?;
    let missing = || Problem::not_found(format!("no message {message} in thread {id}"));
    let message_id: MessageId = message.parse().map_err(|_| missing())?;
    let view = state.store.thread_for(thread, Viewer::Practice).await?;
    let found = view
        .messages
        .iter()
        .find(|m| m.id == message_id)
        .cloned()
        .ok_or_else(missing)?;
    read_by_portal(&state, caller, std::iter::once(found.id)).await?;
    let notifications = state
        .store
        .list_notifications(None, Some(thread))
        .await?
        .into_iter()
        .filter(|n| n.message_id == Some(message_id))
        .map(Notification::from)
        .collect();
    Ok(axum::Json(MessageWithStatus {
        message: Message::of(&view, found),
        notifications,
    }))
}

/// Someone to add to a thread.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewParticipantRequest {
    #[schema(example = "jane@example.net", format = Email)]
    pub address: String,
    pub name: Option<String>,
    /// recipient (default) or staff.
    pub role: Option<String>,
    /// Adding a second person outside the practice makes the conversation one they read
    /// together: say so here, or it is refused (409). Default false.
    pub shared: Option<bool>,
}

/// Add a participant to an open thread: they are notified of messages posted from now on.
/// Someone already in the thread, or removed from it, is refused (409).
#[utoipa::path(post, path = "/v1/threads/{thread_id}/participants", tag = "threads",
    request_body = NewParticipantRequest,
    params(("thread_id" = String, Path, description = "16 hexadecimal digits"), ("Idempotency-Key" = Option<String>, Header, description = "Makes the POST safe to retry: the same request with the same key within 24 hours gets the first answer again")),
    responses((status = 201, body = Participant), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"), (status = 415, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn add_participant(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<NewParticipantRequest>,
) -> Result<impl IntoResponse, Problem> {
    let thread = thread_id(&id)?;
    let role = match req.role.as_deref() {
        None => Role::Recipient,
        Some(r) => r
            .parse::<Role>()
            .map_err(|e| Problem::invalid("role", format!("{e}")))?,
    };
    let new = who(
        "address",
        Who {
            address: req.address,
            name: req.name,
        },
        role,
    )?;
    let participant = state
        .store
        .add_participant(thread, &new, req.shared.unwrap_or(false))
        .await?;
    let view = state.store.thread_for(thread, Viewer::Practice).await?;
    let added = Participant::find(&view, participant)
        .ok_or_else(|| Problem::not_found("the participant was removed meanwhile"))?;
    Ok((StatusCode::CREATED, axum::Json(added)))
}

/// Close a thread (the seeds call it archive): no more posts; email replies get a
/// content-free notice instead of being filed. Closing a closed thread changes nothing.
#[utoipa::path(post, path = "/v1/threads/{thread_id}/close", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Thread), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn close(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Thread>, Problem> {
    let thread = thread_id(&id)?;
    state.store.close_thread(thread).await?;
    Ok(axum::Json(
        state
            .store
            .thread_for(thread, Viewer::Practice)
            .await?
            .into(),
    ))
}

/// Re-open a closed thread.
#[utoipa::path(post, path = "/v1/threads/{thread_id}/reopen", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits")),
    responses((status = 200, body = Thread), (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn reopen(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<axum::Json<Thread>, Problem> {
    let thread = thread_id(&id)?;
    state.store.reopen_thread(thread).await?;
    Ok(axum::Json(
        state
            .store
            .thread_for(thread, Viewer::Practice)
            .await?
            .into(),
    ))
}

/// Remove a participant at once: their waiting notifications are cancelled and their reply
/// address stops working.
#[utoipa::path(delete, path = "/v1/threads/{thread_id}/participants/{address}", tag = "threads",
    params(("thread_id" = String, Path, description = "16 hexadecimal digits"),
        ("address" = String, Path, description = "The participant's email address")),
    responses((status = 204), (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove_participant(
    State(state): State<ApiState>,
    Path((id, address)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    let thread = thread_id(&id)?;
    let address = Address::parse(&address)
        .map_err(|e| Problem::invalid("address", format!("{address}: {e}")))?;
    state
        .store
        .remove_participant(thread, &address)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::NotParticipant { .. } => Problem::not_found(e.to_string()),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
