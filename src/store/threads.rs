//! Threads, participants and messages: creating, posting, reading.

use sqlx::{AssertSqlSafe, FromRow};

use super::{Store, StoreError, WriteTx};
use crate::clock;
use crate::crypto::{Binding, DataKey, WrappedKey};
use crate::domain::{Address, MessageId, Mode, NotificationId, ParticipantId, Role, ThreadId, Via};

/// A person to add to a new thread.
#[derive(Debug, Clone)]
pub struct NewParticipant {
    pub address: Address,
    pub display_name: Option<String>,
    pub role: Role,
}

/// Everything needed to open a thread with its first message.
#[derive(Debug, Clone)]
pub struct NewThread {
    pub subject: String,
    pub mode: Mode,
    /// The author of the first message (a staff member).
    pub author: NewParticipant,
    pub others: Vec<NewParticipant>,
    pub body: String,
    pub via: Via,
}

/// What a post created: the message and one notification per other participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub thread_id: ThreadId,
    pub message_id: MessageId,
    pub notifications: Vec<NotificationId>,
}

/// A participant as shown to staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantView {
    pub id: ParticipantId,
    pub address: Address,
    pub display_name: Option<String>,
    pub role: Role,
    pub revoked: bool,
}

/// A message, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub author: ParticipantId,
    pub author_address: Address,
    pub author_name: Option<String>,
    pub body: String,
    pub via: Via,
    pub created_at: i64,
}

/// A whole thread, opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadView {
    pub id: ThreadId,
    pub subject: String,
    pub mode: Mode,
    pub closed: bool,
    pub created_at: i64,
    pub participants: Vec<ParticipantView>,
    pub messages: Vec<MessageView>,
}

/// One line of the thread list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadSummary {
    pub id: ThreadId,
    pub subject: String,
    pub mode: Mode,
    pub participants: i64,
    pub messages: i64,
    pub last_activity_at: i64,
}

#[derive(FromRow)]
pub(super) struct ThreadRow {
    pub(super) id: i64,
    mode: String,
    status: String,
    key_id: i64,
    wrapped_key: Vec<u8>,
    subject: Vec<u8>,
    created_at: i64,
    last_activity_at: i64,
}

#[derive(FromRow)]
pub(super) struct ParticipantRow {
    pub(super) id: i64,
    pub(super) thread_id: i64,
    address: String,
    display_name_sealed: Option<Vec<u8>>,
    role: String,
    revoked_at: Option<i64>,
}

/// The columns a [`ParticipantRow`] reads.
pub(super) const PARTICIPANT_COLUMNS: &str =
    "id, thread_id, address, display_name_sealed, role, revoked_at";

#[derive(FromRow)]
pub(super) struct MessageRow {
    id: i64,
    author_id: i64,
    address: String,
    display_name_sealed: Option<Vec<u8>>,
    body: Vec<u8>,
    via: String,
    created_at: i64,
    /// Read only where a query selects it (the outbox's history windows).
    #[sqlx(default)]
    pub(super) seq: i64,
}

pub(super) fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, StoreError> {
    v.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected {what} '{v}'")))
}

impl ThreadRow {
    pub(super) fn key(&self, store: &Store) -> Result<DataKey, StoreError> {
        let thread = ThreadId(self.id);
        let key_id = u16::try_from(self.key_id).map_err(|_| {
            StoreError::Corrupt(format!("key id {} of thread {thread}", self.key_id))
        })?;
        DataKey::unwrap(
            store.keyring(),
            thread,
            &WrappedKey {
                key_id,
                sealed: self.wrapped_key.clone(),
            },
        )
        .map_err(|source| StoreError::Seal { thread, source })
    }

    pub(super) fn subject(&self, key: &DataKey) -> Result<String, StoreError> {
        let thread = ThreadId(self.id);
        let plain = key
            .open(Binding::ThreadSubject(thread), &self.subject)
            .map_err(|source| StoreError::Seal { thread, source })?;
        String::from_utf8(plain)
            .map_err(|_| StoreError::Corrupt(format!("subject of thread {thread}")))
    }
}

/// Every message of thread `$1` with its author, oldest first.
pub(super) const MESSAGES_OF_THREAD: &str =
    "SELECT m.id, m.author_id, p.address, p.display_name_sealed, m.body, m.via, m.created_at
     FROM messages m JOIN participants p ON p.id = m.author_id
     WHERE m.thread_id = $1 ORDER BY m.seq";

/// Opens a participant's sealed display name.
pub(super) fn open_name(
    thread: ThreadId,
    participant: ParticipantId,
    key: &DataKey,
    sealed: Option<&[u8]>,
) -> Result<Option<String>, StoreError> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = key
        .open(Binding::ParticipantName(thread, participant), sealed)
        .map_err(|source| StoreError::Seal { thread, source })?;
    String::from_utf8(plain)
        .map(Some)
        .map_err(|_| StoreError::Corrupt(format!("display name of participant {participant}")))
}

impl MessageRow {
    pub(super) fn open(self, thread: ThreadId, key: &DataKey) -> Result<MessageView, StoreError> {
        let id = MessageId(self.id);
        let body = key
            .open(Binding::MessageBody(thread, id), &self.body)
            .map_err(|source| StoreError::Seal { thread, source })?;
        let author = ParticipantId(self.author_id);
        Ok(MessageView {
            id,
            author,
            author_address: Address::parse(&self.address)
                .map_err(|_| StoreError::Corrupt(format!("author of message {id}")))?,
            author_name: open_name(thread, author, key, self.display_name_sealed.as_deref())?,
            body: String::from_utf8(body)
                .map_err(|_| StoreError::Corrupt(format!("body of message {id}")))?,
            via: parse("via", &self.via)?,
            created_at: self.created_at,
        })
    }
}

impl ParticipantRow {
    /// The participant with its name opened with `key`, its thread's key.
    pub(super) fn view(self, key: &DataKey) -> Result<ParticipantView, StoreError> {
        let id = ParticipantId(self.id);
        Ok(ParticipantView {
            id,
            address: Address::parse(&self.address)
                .map_err(|_| StoreError::Corrupt(format!("participant address of {}", self.id)))?,
            display_name: open_name(
                ThreadId(self.thread_id),
                id,
                key,
                self.display_name_sealed.as_deref(),
            )?,
            role: parse("role", &self.role)?,
            revoked: self.revoked_at.is_some(),
        })
    }
}

/// Records an audit event inside the caller's transaction. `detail` must hold no content.
pub(super) async fn event(
    tx: &mut WriteTx,
    thread: Option<ThreadId>,
    kind: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO events (at, thread_id, kind, detail) VALUES ($1, $2, $3, $4)")
        .bind(clock::now())
        .bind(thread.map(|t| t.0))
        .bind(kind)
        .bind(detail.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Store {
    /// Opens a thread with its first message; the notifications to every other participant are
    /// queued in the same transaction.
    pub async fn create_thread(&self, new: NewThread) -> Result<Posted, StoreError> {
        if new.body.trim().is_empty() {
            return Err(StoreError::Invalid("the message body is empty".into()));
        }
        let mut seen = vec![new.author.address.clone()];
        for p in &new.others {
            if seen.contains(&p.address) {
                return Err(StoreError::Invalid(format!(
                    "{} is named more than once",
                    p.address
                )));
            }
            seen.push(p.address.clone());
        }
        let now = clock::now();
        let thread = ThreadId::random();
        let key = DataKey::generate();
        let wrapped = key.wrap(self.keyring(), thread);
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO threads (id, mode, key_id, wrapped_key, subject, created_at, last_activity_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(thread.0)
        .bind(new.mode.as_str())
        .bind(i64::from(wrapped.key_id))
        .bind(&wrapped.sealed)
        .bind(key.seal(Binding::ThreadSubject(thread), new.subject.as_bytes()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let mut author = None;
        for p in std::iter::once(&new.author).chain(&new.others) {
            let id = ParticipantId::random();
            let name = p
                .display_name
                .as_ref()
                .map(|n| key.seal(Binding::ParticipantName(thread, id), n.as_bytes()));
            sqlx::query(
                "INSERT INTO participants (id, thread_id, address, display_name_sealed, role,
                                           created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.0)
            .bind(thread.0)
            .bind(p.address.as_str())
            .bind(name)
            .bind(p.role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            author.get_or_insert(id);
        }
        let author = author.expect("the author is always inserted first");
        event(
            &mut tx,
            Some(thread),
            "thread.created",
            serde_json::json!({"mode": new.mode.as_str(), "participants": new.others.len() + 1}),
        )
        .await?;
        let message = SealedMessage::seal(thread, &key, author, &new.body, new.via);
        let posted = insert_message(&mut tx, thread, new.mode, message, now).await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// Posts a message into an open thread as the participant with address `from`.
    pub async fn post_message(
        &self,
        thread: ThreadId,
        from: &Address,
        body: &str,
        via: Via,
    ) -> Result<Posted, StoreError> {
        if body.trim().is_empty() {
            return Err(StoreError::Invalid("the message body is empty".into()));
        }
        let mut tx = self.write_tx().await?;
        let row: ThreadRow = sqlx::query_as("SELECT * FROM threads WHERE id = $1")
            .bind(thread.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::UnknownThread(thread))?;
        if row.status == "closed" {
            return Err(StoreError::ThreadClosed(thread));
        }
        let author: i64 = sqlx::query_scalar(
            "SELECT id FROM participants WHERE thread_id = $1 AND address = $2 AND revoked_at IS NULL",
        )
        .bind(thread.0)
        .bind(from.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotParticipant {
            thread,
            address: from.clone(),
        })?;
        let key = row.key(self)?;
        let mode = parse("mode", &row.mode)?;
        let message = SealedMessage::seal(thread, &key, ParticipantId(author), body, via);
        let posted = insert_message(&mut tx, thread, mode, message, clock::now()).await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// Closes a thread: no more posts, and email replies get a content-free notice instead of
    /// being filed.
    pub async fn close_thread(&self, thread: ThreadId) -> Result<(), StoreError> {
        let mut tx = self.write_tx().await?;
        let updated = sqlx::query("UPDATE threads SET status = 'closed' WHERE id = $1")
            .bind(thread.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::UnknownThread(thread));
        }
        event(
            &mut tx,
            Some(thread),
            "thread.closed",
            serde_json::json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes a participant from a thread, at once: their queued and deferred notifications
    /// are cancelled, their reply tokens stop working (refused at `RCPT TO`, and re-checked
    /// when a reply is committed). The row stays, for the messages they wrote. Returns how
    /// many notifications were cancelled.
    pub async fn remove_participant(
        &self,
        thread: ThreadId,
        address: &Address,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write_tx().await?;
        let participant: Option<i64> = sqlx::query_scalar(
            "UPDATE participants SET revoked_at = $1
             WHERE thread_id = $2 AND address = $3 AND revoked_at IS NULL
             RETURNING id",
        )
        .bind(clock::now())
        .bind(thread.0)
        .bind(address.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(participant) = participant else {
            return Err(StoreError::NotParticipant {
                thread,
                address: address.clone(),
            });
        };
        let cancelled = sqlx::query(
            "UPDATE outbox SET status = 'cancelled', last_error = 'participant removed',
                    next_attempt_at = $1
             WHERE participant_id = $2 AND status IN ('queued', 'deferred')",
        )
        .bind(clock::now())
        .bind(participant)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        event(
            &mut tx,
            Some(thread),
            "participant.removed",
            serde_json::json!({"participant_id": ParticipantId(participant).to_string(), "notifications_cancelled": cancelled}),
        )
        .await?;
        tx.commit().await?;
        Ok(cancelled)
    }

    /// A whole thread with its subject and messages opened.
    pub async fn thread(&self, thread: ThreadId) -> Result<ThreadView, StoreError> {
        let mut conn = self.pool.acquire().await?;
        let row: ThreadRow = sqlx::query_as("SELECT * FROM threads WHERE id = $1")
            .bind(thread.0)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(StoreError::UnknownThread(thread))?;
        let key = row.key(self)?;
        let participants = sqlx::query_as::<_, ParticipantRow>(AssertSqlSafe(format!(
            "SELECT {PARTICIPANT_COLUMNS} FROM participants
             WHERE thread_id = $1 ORDER BY created_at, role DESC, address"
        )))
        .bind(thread.0)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|p| p.view(&key))
        .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<MessageRow> = sqlx::query_as(MESSAGES_OF_THREAD)
            .bind(thread.0)
            .fetch_all(&mut *conn)
            .await?;
        let messages = rows
            .into_iter()
            .map(|m| m.open(thread, &key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ThreadView {
            id: thread,
            subject: row.subject(&key)?,
            mode: parse("mode", &row.mode)?,
            closed: row.status == "closed",
            created_at: row.created_at,
            participants,
            messages,
        })
    }

    /// Every thread, most recently active first.
    pub async fn list_threads(&self) -> Result<Vec<ThreadSummary>, StoreError> {
        #[derive(FromRow)]
        struct Row {
            #[sqlx(flatten)]
            thread: ThreadRow,
            participants: i64,
            messages: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT t.*,
                (SELECT COUNT(*) FROM participants p WHERE p.thread_id = t.id) AS participants,
                (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id) AS messages
             FROM threads t ORDER BY t.last_activity_at DESC, t.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let key = r.thread.key(self)?;
                Ok(ThreadSummary {
                    id: ThreadId(r.thread.id),
                    subject: r.thread.subject(&key)?,
                    mode: parse("mode", &r.thread.mode)?,
                    participants: r.participants,
                    messages: r.messages,
                    last_activity_at: r.thread.last_activity_at,
                })
            })
            .collect()
    }
}

/// A message ready to insert: its id is chosen and its body sealed (the id is part of the
/// body's additional authenticated data), so sealing can happen outside the write transaction.
#[derive(Debug, Clone)]
pub struct SealedMessage {
    pub id: MessageId,
    pub author: ParticipantId,
    body: Vec<u8>,
    pub via: Via,
}

impl SealedMessage {
    /// The sealed body, as stored.
    pub(super) fn body(&self) -> &[u8] {
        &self.body
    }

    /// Seals `body` for a new message of `thread` by `author`.
    pub fn seal(
        thread: ThreadId,
        key: &DataKey,
        author: ParticipantId,
        body: &str,
        via: Via,
    ) -> SealedMessage {
        let id = MessageId::random();
        let body = body.replace("\r\n", "\n");
        SealedMessage {
            id,
            author,
            body: key.seal(Binding::MessageBody(thread, id), body.as_bytes()),
            via,
        }
    }
}

/// Inserts a sealed message and queues one notification per other active participant.
/// Inbound replies are filed by `writer::file`, which writes the same rows through the
/// committer's own connection: a change to what a posted message writes belongs in both.
pub(super) async fn insert_message(
    tx: &mut WriteTx,
    thread: ThreadId,
    mode: Mode,
    message: SealedMessage,
    now: i64,
) -> Result<Posted, StoreError> {
    let SealedMessage {
        id,
        author,
        body,
        via,
    } = message;
    sqlx::query(
        "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at)
         VALUES ($1, $2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE thread_id = $2),
                 $3, $4, $5, $6)",
    )
    .bind(id.0)
    .bind(thread.0)
    .bind(author.0)
    .bind(body)
    .bind(via.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE threads SET last_activity_at = $1 WHERE id = $2")
        .bind(now)
        .bind(thread.0)
        .execute(&mut **tx)
        .await?;
    let recipients: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, address FROM participants
         WHERE thread_id = $1 AND id <> $2 AND revoked_at IS NULL ORDER BY address",
    )
    .bind(thread.0)
    .bind(author.0)
    .fetch_all(&mut **tx)
    .await?;
    let mut notifications = Vec::with_capacity(recipients.len());
    for (participant, address) in recipients {
        let n = NotificationId::random();
        sqlx::query(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
                                 next_attempt_at, created_at)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), $2, $3, $4, $5, 'message',
                     $6, $7, $7)",
        )
        .bind(n.0)
        .bind(thread.0)
        .bind(id.0)
        .bind(participant)
        .bind(address)
        .bind(mode.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
        notifications.push(n);
    }
    event(
        tx,
        Some(thread),
        "message.posted",
        serde_json::json!({
            "message_id": id.to_string(),
            "via": via.as_str(),
            "notifications": notifications.len(),
        }),
    )
    .await?;
    Ok(Posted {
        thread_id: thread,
        message_id: id,
        notifications,
    })
}
