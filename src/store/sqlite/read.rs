//! Every read of the store: queries through sqlx's pool, returning rows with content still
//! sealed. Dynamic SQL here (`IN (…)` lists, message windows) holds `$n` placeholders only;
//! values are always bound, never spliced into the text.

use std::collections::HashMap;

use sqlx::sqlite::SqliteArguments;
use sqlx::{Arguments, AssertSqlSafe, FromRow, Sqlite, SqliteConnection, SqlitePool};

use crate::domain::{Address, DeliveryStatus, HeldStatus, NotificationId, ParticipantId, ThreadId};
use crate::store::StoreError;
use crate::store::rows::{
    DeliveryRows, EarlierIds, HeldRow, MessageRow, OutboxRow, ParticipantRow, PersonRow, TargetRow,
    ThreadCountsRow, ThreadRow, WholeThread,
};

const PARTICIPANT_COLUMNS: &str = "id, thread_id, address, display_name_sealed, role, revoked_at,
    (SELECT convenience FROM people WHERE people.address = participants.address) AS convenience,
    archived_at";
const MESSAGE_COLUMNS: &str = "m.id, m.author_id, p.address, p.display_name_sealed, m.body, m.via, m.created_at, m.seq, m.auth, m.answers_id";

/// `$from, $from+1, …` for `n` values.
fn placeholders(n: usize, from: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind<'q, T>(a: &mut SqliteArguments, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'q,
{
    a.add(value)
        .map_err(|e| StoreError::Invalid(format!("binding a value: {e}")))
}

/// Rows whose `$column IN (…)` one of `values`; `select` ends with "IN".
async fn fetch_in<T>(
    conn: &mut SqliteConnection,
    select: &str,
    values: impl Iterator<Item = i64>,
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    let mut values: Vec<i64> = values.collect();
    values.sort_unstable();
    values.dedup();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{select} ({})", placeholders(values.len(), 1));
    let mut a = SqliteArguments::default();
    for v in values {
        bind(&mut a, v)?;
    }
    Ok(sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(conn)
        .await?)
}

pub(crate) async fn thread(pool: &SqlitePool, id: ThreadId) -> Result<ThreadRow, StoreError> {
    sqlx::query_as("SELECT * FROM threads WHERE id = $1")
        .bind(id.0)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownThread(id))
}

pub(crate) async fn thread_whole(
    pool: &SqlitePool,
    id: ThreadId,
) -> Result<WholeThread, StoreError> {
    let mut conn = pool.acquire().await?;
    let row: ThreadRow = sqlx::query_as("SELECT * FROM threads WHERE id = $1")
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(StoreError::UnknownThread(id))?;
    let participants = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {PARTICIPANT_COLUMNS} FROM participants
         WHERE thread_id = $1 ORDER BY created_at, role DESC, address"
    )))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let messages = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {MESSAGE_COLUMNS}
         FROM messages m JOIN participants p ON p.id = m.author_id
         WHERE m.thread_id = $1 AND m.cancelled_at IS NULL ORDER BY m.seq"
    )))
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let withdrawn = sqlx::query_as(
        "SELECT m.id, m.author_id, p.address, p.display_name_sealed, m.created_at,
                m.cancelled_at, m.answers_id
         FROM messages m JOIN participants p ON p.id = m.author_id
         WHERE m.thread_id = $1 AND m.cancelled_at IS NOT NULL ORDER BY m.seq",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await?;
    let held: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM held WHERE thread_id = $1 AND status = 'held'")
            .bind(id.0)
            .fetch_one(&mut *conn)
            .await?;
    Ok((row, participants, messages, withdrawn, held))
}

/// Every thread with its counts, most recently active first.
pub(crate) async fn threads(pool: &SqlitePool) -> Result<Vec<ThreadCountsRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.*,
            (SELECT COUNT(*) FROM participants p WHERE p.thread_id = t.id) AS participants,
            (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id AND m.cancelled_at IS NULL) AS messages,
            (SELECT COUNT(*) FROM held h WHERE h.thread_id = t.id AND h.status = 'held') AS held
         FROM threads t ORDER BY t.last_activity_at DESC, t.id",
    )
    .fetch_all(pool)
    .await?)
}

/// One page of threads with their counts, newest first (by `seq`, so that threads made while
/// a client pages through do not shift the pages it has not read yet).
pub(crate) async fn threads_page(
    pool: &SqlitePool,
    f: &crate::store::ThreadFilter,
) -> Result<Vec<ThreadCountsRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.*,
            (SELECT COUNT(*) FROM participants p WHERE p.thread_id = t.id) AS participants,
            (SELECT COUNT(*) FROM messages m WHERE m.thread_id = t.id AND m.cancelled_at IS NULL) AS messages,
            (SELECT COUNT(*) FROM held h WHERE h.thread_id = t.id AND h.status = 'held') AS held
         FROM threads t
         WHERE ($1 IS NULL OR t.status = $1)
           AND ($2 IS NULL OR EXISTS (SELECT 1 FROM participants p
                                      WHERE p.thread_id = t.id AND p.address = $2))
           AND ($3 IS NULL OR t.last_activity_at >= $3)
           AND ($4 IS NULL OR t.seq < $4)
         ORDER BY t.seq DESC
         LIMIT $5",
    )
    .bind(f.closed.map(|c| if c { "closed" } else { "open" }))
    .bind(f.participant.as_ref().map(|a| a.as_str().to_owned()))
    .bind(f.updated_since)
    .bind(f.after)
    .bind(i64::try_from(f.limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?)
}

/// The participant `participant` of `thread`, with the thread's mode and status.
pub(crate) async fn target(
    pool: &SqlitePool,
    thread: ThreadId,
    participant: ParticipantId,
) -> Result<Option<TargetRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.address, p.role, p.revoked_at, p.thread_id, t.mode, t.status,
                (SELECT convenience FROM people WHERE address = p.address) AS convenience
         FROM participants p JOIN threads t ON t.id = p.thread_id
         WHERE p.id = $1 AND p.thread_id = $2",
    )
    .bind(participant.0)
    .bind(thread.0)
    .fetch_optional(pool)
    .await?)
}

/// Whether `header` was filed in `thread`, or is held there undecided.
pub(crate) async fn already_received(
    pool: &SqlitePool,
    thread: ThreadId,
    header: &str,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM inbound WHERE thread_id = $1 AND header_message_id = $2
                                               AND filed_message_id IS NOT NULL)
             OR EXISTS (SELECT 1 FROM held WHERE thread_id = $1 AND header_message_id = $2
                                            AND status = 'held')",
    )
    .bind(thread.0)
    .bind(header)
    .fetch_one(pool)
    .await?)
}

/// The thread and participant a notification was sent to.
pub(crate) async fn notification_recipient(
    pool: &SqlitePool,
    notification: NotificationId,
) -> Result<Option<(ThreadId, ParticipantId)>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT thread_id, participant_id FROM outbox WHERE id = $1")
            .bind(notification.0)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(t, p)| (ThreadId(t), ParticipantId(p))))
}

/// Sealed bodies of thread `thread`: its `window` latest messages, and the `window` ending at
/// the message of notification `answered` when that is an older one. One query.
pub(crate) async fn sent_bodies(
    pool: &SqlitePool,
    thread: ThreadId,
    answered: Option<NotificationId>,
    window: u32,
) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, body FROM messages
         WHERE thread_id = $1 AND cancelled_at IS NULL
           AND (seq > (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = $1) - $2
                OR seq BETWEEN (SELECT m.seq FROM outbox o JOIN messages m ON m.id = o.message_id
                                WHERE o.id = $3 AND o.thread_id = $1) - $2 + 1
                           AND (SELECT m.seq FROM outbox o JOIN messages m ON m.id = o.message_id
                                WHERE o.id = $3 AND o.thread_id = $1))",
    )
    .bind(thread.0)
    .bind(i64::from(window))
    .bind(answered.map(|n| n.0))
    .fetch_all(pool)
    .await?)
}

/// The recorded outcome word of an IMAP message (by UIDVALIDITY and UID), if it was decided.
pub(crate) async fn imap_outcome(
    pool: &SqlitePool,
    uidvalidity: i64,
    uid: i64,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT outcome FROM inbound WHERE imap_uidvalidity = $1 AND imap_uid = $2
         ORDER BY received_at DESC LIMIT 1",
    )
    .bind(uidvalidity)
    .bind(uid)
    .fetch_optional(pool)
    .await?)
}

/// The notification that was sent with this Message-ID, if any.
pub(crate) async fn notification_by_email_id(
    pool: &SqlitePool,
    email_message_id: &str,
) -> Result<Option<(NotificationId, ThreadId)>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, thread_id FROM outbox WHERE email_message_id = $1")
            .bind(email_message_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(n, t)| (NotificationId(n), ThreadId(t))))
}

pub(crate) async fn notification_thread(
    pool: &SqlitePool,
    id: NotificationId,
) -> Result<Option<ThreadId>, StoreError> {
    let t: Option<i64> = sqlx::query_scalar("SELECT thread_id FROM outbox WHERE id = $1")
        .bind(id.0)
        .fetch_optional(pool)
        .await?;
    Ok(t.map(ThreadId))
}

/// Loads a claimed batch with a fixed number of queries: the rows, their recipients, the
/// threads of convenience notifications, then per thread one query for the windows of
/// `history` messages before each announced message (merged where they overlap).
pub(crate) async fn deliveries(
    pool: &SqlitePool,
    ids: &[NotificationId],
    history: i64,
) -> Result<DeliveryRows, StoreError> {
    let mut conn = pool.acquire().await?;
    let rows: Vec<OutboxRow> = fetch_in(
        &mut conn,
        "SELECT * FROM outbox WHERE id IN",
        ids.iter().map(|i| i.0),
    )
    .await?;
    let outbox: HashMap<i64, OutboxRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    let recipients: Vec<ParticipantRow> = fetch_in(
        &mut conn,
        &format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id IN"),
        outbox.values().map(|r| r.participant_id),
    )
    .await?;
    let mut announced: HashMap<i64, Vec<i64>> = HashMap::new();
    for r in outbox.values() {
        if let (Some(m), "message", "convenience") =
            (r.message_id, r.kind.as_str(), r.mode.as_str())
        {
            announced.entry(r.thread_id).or_default().push(m);
        }
    }
    let thread_rows: Vec<ThreadRow> = fetch_in(
        &mut conn,
        "SELECT * FROM threads WHERE id IN",
        announced.keys().copied(),
    )
    .await?;
    let announced_seqs: Vec<(i64, i64)> = fetch_in(
        &mut conn,
        "SELECT id, seq FROM messages WHERE id IN",
        announced.values().flatten().copied(),
    )
    .await?;
    let seq_of: HashMap<i64, i64> = announced_seqs.into_iter().collect();
    let mut threads = Vec::with_capacity(thread_rows.len());
    for t in thread_rows {
        let mut seqs: Vec<i64> = announced[&t.id]
            .iter()
            .filter_map(|m| seq_of.get(m).copied())
            .collect();
        seqs.sort_unstable();
        let mut windows: Vec<(i64, i64)> = Vec::new();
        for s in seqs {
            let low = s - history;
            match windows.last_mut() {
                Some(w) if low <= w.1 + 1 => w.1 = s,
                _ => windows.push((low, s)),
            }
        }
        if windows.is_empty() {
            threads.push((t, Vec::new()));
            continue;
        }
        let ranges: Vec<String> = (0..windows.len())
            .map(|k| format!("m.seq BETWEEN ${} AND ${}", 2 * k + 2, 2 * k + 3))
            .collect();
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS}
             FROM messages m JOIN participants p ON p.id = m.author_id
             WHERE m.thread_id = $1 AND m.cancelled_at IS NULL AND ({})
             ORDER BY m.seq",
            ranges.join(" OR ")
        );
        let mut a = SqliteArguments::default();
        bind(&mut a, t.id)?;
        for (low, high) in &windows {
            bind(&mut a, *low)?;
            bind(&mut a, *high)?;
        }
        let messages: Vec<MessageRow> = sqlx::query_as_with(AssertSqlSafe(sql), a)
            .fetch_all(&mut *conn)
            .await?;
        threads.push((t, messages));
    }
    Ok(DeliveryRows {
        outbox,
        recipients,
        threads,
    })
}

/// For notifications `ids`: their (participant, seq), and per (thread, participant) the
/// Message-IDs of earlier notifications with their seq — the first one and the `recent`
/// latest before the batch — oldest first.
pub(crate) async fn earlier_message_ids(
    pool: &SqlitePool,
    ids: &[(NotificationId, ThreadId)],
    recent: usize,
) -> Result<EarlierIds, StoreError> {
    let mut conn = pool.acquire().await?;
    let seqs: Vec<(i64, i64, i64)> = fetch_in(
        &mut conn,
        "SELECT id, participant_id, seq FROM outbox WHERE id IN",
        ids.iter().map(|(n, _)| n.0),
    )
    .await?;
    let seqs: HashMap<i64, (i64, i64)> = seqs.into_iter().map(|(id, p, s)| (id, (p, s))).collect();
    let mut groups: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
    for (n, thread) in ids {
        if let Some((participant, seq)) = seqs.get(&n.0) {
            groups
                .entry((thread.0, *participant))
                .or_default()
                .push(*seq);
        }
    }
    let mut earlier = HashMap::new();
    for ((thread, participant), group) in &groups {
        let max = group.iter().max().copied().unwrap_or(0);
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT seq, email_message_id FROM (
                 SELECT seq, email_message_id FROM outbox
                 WHERE thread_id = $1 AND participant_id = $2 AND email_message_id IS NOT NULL
                 ORDER BY seq LIMIT 1)
             UNION
             SELECT seq, email_message_id FROM (
                 SELECT seq, email_message_id FROM outbox
                 WHERE thread_id = $1 AND participant_id = $2 AND email_message_id IS NOT NULL
                   AND seq < $3
                 ORDER BY seq DESC LIMIT $4)
             ORDER BY seq",
        )
        .bind(thread)
        .bind(participant)
        .bind(max)
        .bind((group.len() + recent) as i64)
        .fetch_all(&mut *conn)
        .await?;
        earlier.insert((*thread, *participant), rows);
    }
    Ok((seqs, earlier))
}

/// Outbox rows, newest first, optionally filtered by status and thread.
pub(crate) async fn notifications(
    pool: &SqlitePool,
    status: Option<DeliveryStatus>,
    thread: Option<ThreadId>,
) -> Result<Vec<OutboxRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM outbox
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR thread_id = $2)
         ORDER BY seq DESC",
    )
    .bind(status.map(DeliveryStatus::as_str))
    .bind(thread.map(|t| t.0))
    .fetch_all(pool)
    .await?)
}

/// A person's directory entry, by address.
pub(crate) async fn person(
    pool: &SqlitePool,
    address: &Address,
) -> Result<Option<PersonRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM people WHERE address = $1")
        .bind(address.as_str())
        .fetch_optional(pool)
        .await?)
}

/// Everyone in the directory, of one kind or all, by address.
pub(crate) async fn people(
    pool: &SqlitePool,
    kind: Option<crate::domain::PersonKind>,
) -> Result<Vec<PersonRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM people WHERE ($1 IS NULL OR kind = $1) ORDER BY address")
            .bind(kind.map(crate::domain::PersonKind::as_str))
            .fetch_all(pool)
            .await?,
    )
}

/// Every API key (id, name, scope, created_at, revoked_at), newest first.
pub(crate) async fn api_keys(
    pool: &SqlitePool,
) -> Result<Vec<(i64, String, String, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, scope, created_at, revoked_at FROM api_keys
         ORDER BY created_at DESC, id",
    )
    .fetch_all(pool)
    .await?)
}

/// One API key's secret hash, scope and revocation time.
pub(crate) async fn api_key(
    pool: &SqlitePool,
    id: crate::domain::ApiKeyId,
) -> Result<Option<(Vec<u8>, String, Option<i64>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT secret_hash, scope, revoked_at FROM api_keys WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?,
    )
}

/// Every webhook subscription (id, url, description, events comma-separated, created_at,
/// removed_at), newest first.
pub(crate) async fn webhooks(
    pool: &SqlitePool,
) -> Result<Vec<(i64, String, String, String, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT w.id, w.url, w.description,
                COALESCE((SELECT group_concat(event_type, ',') FROM webhook_events e
                          WHERE e.webhook_id = w.id), ''),
                w.created_at, w.removed_at
         FROM webhooks w ORDER BY w.created_at DESC, w.id",
    )
    .fetch_all(pool)
    .await?)
}

/// What sending one claimed delivery needs: (id, webhook_id, url, key_id, wrapped_secret,
/// payload, attempts, created_at).
#[allow(clippy::type_complexity)]
pub(crate) async fn due_delivery(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<(i64, i64, String, i64, Vec<u8>, String, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT d.id, d.webhook_id, w.url, w.key_id, w.wrapped_secret, d.payload, d.attempts,
                d.created_at
         FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
         WHERE d.id = $1 AND d.status = 'pending'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// Counts of what is stored, for metrics: (table, status, count) for the outbox, webhook
/// deliveries and held mail.
pub(crate) async fn status_counts(
    pool: &SqlitePool,
) -> Result<Vec<(String, String, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT 'outbox', status, COUNT(*) FROM outbox GROUP BY status
         UNION ALL
         SELECT 'webhook', status, COUNT(*) FROM webhook_deliveries GROUP BY status
         UNION ALL
         SELECT 'held', status, COUNT(*) FROM held GROUP BY status",
    )
    .fetch_all(pool)
    .await?)
}

/// A web session by its hash: (person_id, participant_id, the participant's thread, the
/// person's address, created_at, last_seen_at, ended_at).
#[allow(clippy::type_complexity)]
pub(crate) async fn web_session(
    pool: &SqlitePool,
    id_hash: &[u8],
) -> Result<Option<(i64, i64, i64, String, i64, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.person_id, s.participant_id, p.thread_id, pe.address, s.created_at,
                s.last_seen_at, s.ended_at
         FROM web_sessions s JOIN participants p ON p.id = s.participant_id
              JOIN people pe ON pe.id = s.person_id
         WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(pool)
    .await?)
}

/// The read receipts of a thread's messages: (message, participant, read_at).
pub(crate) async fn thread_reads(
    pool: &SqlitePool,
    thread: ThreadId,
) -> Result<Vec<(i64, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT r.message_id, r.participant_id, r.read_at
         FROM message_reads r JOIN messages m ON m.id = r.message_id
         WHERE m.thread_id = $1 AND m.cancelled_at IS NULL",
    )
    .bind(thread.0)
    .fetch_all(pool)
    .await?)
}

/// A person's passcode hash.
pub(crate) async fn passcode_hash(
    pool: &SqlitePool,
    person: i64,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT passcode_hash FROM people WHERE id = $1")
            .bind(person)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Webhook deliveries, newest first.
pub(crate) async fn webhook_deliveries(
    pool: &SqlitePool,
    filter: &crate::store::webhooks::DeliveryFilter,
) -> Result<Vec<crate::store::webhooks::DeliveryView>, StoreError> {
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        i64,
        i64,
        String,
        String,
        i64,
        i64,
        i64,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<i64>,
    )> = sqlx::query_as(
        "SELECT id, webhook_id, event_id, event_type, status, attempts, created_at,
                next_attempt_at, last_attempt_at, last_status, last_error, delivered_at
         FROM webhook_deliveries
         WHERE ($1 IS NULL OR webhook_id = $1) AND ($2 IS NULL OR status = $2)
           AND ($3 IS NULL OR id < $3)
         ORDER BY id DESC LIMIT $4",
    )
    .bind(filter.webhook.map(|w| w.0))
    .bind(filter.status.as_deref())
    .bind(filter.before)
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| crate::store::webhooks::DeliveryView {
            id: r.0,
            webhook_id: crate::domain::WebhookId(r.1),
            event_id: r.2,
            event_type: r.3,
            status: r.4,
            attempts: r.5,
            created_at: r.6,
            next_attempt_at: r.7,
            last_attempt_at: r.8,
            last_status: r.9,
            last_error: r.10,
            delivered_at: r.11,
        })
        .collect())
}

/// Audit events after `after` (id, at, thread_id, kind, detail), oldest first.
pub(crate) async fn events_after(
    pool: &SqlitePool,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, i64, Option<i64>, String, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, at, thread_id, kind, detail FROM events WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Inbound ledger entries since `since`, newest first (never the raw copy).
pub(crate) async fn inbound_since(
    pool: &SqlitePool,
    since: i64,
    limit: i64,
) -> Result<Vec<crate::store::feed::InboundRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, received_at, door, thread_id, outcome, reason, filed_message_id
         FROM inbound WHERE received_at >= $1 ORDER BY received_at DESC, id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub(crate) async fn held_list(
    pool: &SqlitePool,
    status: Option<HeldStatus>,
) -> Result<Vec<HeldRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM held WHERE ($1 IS NULL OR status = $1) ORDER BY received_at DESC, id",
    )
    .bind(status.map(HeldStatus::as_str))
    .fetch_all(pool)
    .await?)
}

pub(crate) async fn held(pool: &SqlitePool, id: i64) -> Result<HeldRow, StoreError> {
    sqlx::query_as("SELECT * FROM held WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownHeld(id))
}

/// Display names written in clear by schema versions before 3: (participant, thread, name).
pub(crate) async fn names_in_clear(
    pool: &SqlitePool,
) -> Result<Vec<(i64, i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, thread_id, display_name FROM participants WHERE display_name IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}

/// Participant addresses with characters outside printable ASCII.
pub(crate) async fn non_ascii_addresses(
    pool: &SqlitePool,
) -> Result<Vec<(i64, String)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, address FROM participants WHERE address GLOB '*[^ -~]*'")
            .fetch_all(pool)
            .await?,
    )
}

/// Whether a notification of a message went out to `address` with a newer link than the one
/// `participant` got at `issued_at`: made later, or in the same second but queued after it
/// (the same participant's links of one second are the same link).
pub(crate) async fn newer_link_sent(
    pool: &SqlitePool,
    address: &str,
    participant: ParticipantId,
    issued_at: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox
                        WHERE recipient = $1 AND kind = 'message' AND status = 'sent'
                          AND (created_at > $2
                               OR (created_at = $2 AND seq > COALESCE(
                                     (SELECT MAX(seq) FROM outbox
                                      WHERE participant_id = $3 AND created_at = $2),
                                     9223372036854775807))))",
    )
    .bind(address)
    .bind(issued_at)
    .bind(participant.0)
    .fetch_one(pool)
    .await?)
}

/// The latest code asked from a link: (id, key id, nonce, expires_at, passed_at).
pub(crate) async fn latest_code(
    pool: &SqlitePool,
    link_hash: &[u8],
) -> Result<Option<(i64, i64, Vec<u8>, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, key_id, nonce, expires_at, passed_at FROM web_codes
         WHERE link_hash = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(link_hash)
    .fetch_optional(pool)
    .await?)
}

/// A claimed text message: (id, person's address, code's key id, nonce, attempts,
/// give_up_at).
pub(crate) async fn due_sms(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<(i64, String, i64, Vec<u8>, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.id, p.address, c.key_id, c.nonce, s.attempts, s.give_up_at
         FROM sms_outbox s JOIN web_codes c ON c.id = s.code_id JOIN people p ON p.id = s.person_id
         WHERE s.id = $1 AND s.status = 'queued'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The text messages, newest first: (id, person's address, status, attempts, last_error,
/// created_at, sent_at).
pub(crate) async fn sms_list(
    pool: &SqlitePool,
    limit: i64,
) -> Result<Vec<(i64, String, String, i64, Option<String>, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.id, p.address, s.status, s.attempts, s.last_error, s.created_at, s.sent_at
         FROM sms_outbox s JOIN people p ON p.id = s.person_id
         ORDER BY s.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Every thread's id.
pub(crate) async fn thread_ids(pool: &SqlitePool) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM threads ORDER BY id")
        .fetch_all(pool)
        .await?)
}

/// What is known about a message when its author asks to take it back (see
/// [`super::web::CANCEL_FACTS`]); `None` when it is not in the thread.
pub(crate) async fn cancel_facts(
    pool: &SqlitePool,
    thread: ThreadId,
    message: crate::domain::MessageId,
    author: ParticipantId,
) -> Result<Option<crate::domain::message::CancelFacts>, StoreError> {
    let row: Option<(bool, bool, bool, bool, bool, bool, bool)> =
        sqlx::query_as(super::web::CANCEL_FACTS)
            .bind(message.0)
            .bind(thread.0)
            .bind(author.0)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|r| crate::domain::message::CancelFacts {
        by_author: r.0,
        withdrawn: r.1,
        closed: r.2,
        answered: r.3,
        seen_by_participant: r.4,
        read_by_practice: r.5,
        delivered_with_content: r.6,
    }))
}

/// Which of `people` the directory has as staff.
pub(crate) async fn staff_people(
    pool: &SqlitePool,
    people: &[crate::store::NewParticipant],
) -> Result<Vec<Address>, StoreError> {
    let mut staff = Vec::new();
    for p in people {
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM people WHERE address = $1")
            .bind(p.address.as_str())
            .fetch_optional(pool)
            .await?;
        if kind.as_deref() == Some("staff") {
            staff.push(p.address.clone());
        }
    }
    Ok(staff)
}

/// A person's standing with the web view's identity check.
pub(crate) async fn person_standing(
    pool: &SqlitePool,
    person: crate::domain::PersonId,
) -> Result<Option<crate::domain::lockout::Standing>, StoreError> {
    Ok(
        sqlx::query_as::<_, PersonRow>("SELECT * FROM people WHERE id = $1")
            .bind(person.0)
            .fetch_optional(pool)
            .await?
            .map(|row| row.standing()),
    )
}

/// When the next row of `queue` becomes claimable: due, and any lease on it run out.
pub(crate) async fn next_due(
    pool: &SqlitePool,
    queue: crate::store::queue::Queue,
) -> Result<Option<i64>, StoreError> {
    let t = super::queue::table(queue);
    let sql = format!(
        "SELECT MIN(MAX(next_attempt_at, COALESCE(claimed_until + 1, 0))) FROM {} WHERE {}",
        t.name, t.waiting
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?)
}

/// Who holds the lease `name` at `now` and until when, if its holder has not let it run out.
pub(crate) async fn lease_holder(
    pool: &SqlitePool,
    name: &str,
    now: i64,
) -> Result<Option<(String, i64)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT holder, until FROM leases WHERE name = $1 AND until >= $2")
            .bind(name)
            .bind(now)
            .fetch_optional(pool)
            .await?,
    )
}

const JOB_COLUMNS: &str = "id, kind, key, status, attempts, next_attempt_at AS due_at, done_at,
    last_error";

pub(crate) async fn scheduled_job(
    pool: &SqlitePool,
    id: i64,
) -> Result<Option<crate::store::scheduled::JobView>, StoreError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM scheduled_jobs WHERE id = $1");
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(pool)
        .await?)
}

/// Scheduled jobs (of one kind, or all), newest due first.
pub(crate) async fn scheduled_jobs(
    pool: &SqlitePool,
    kind: Option<&str>,
) -> Result<Vec<crate::store::scheduled::JobView>, StoreError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM scheduled_jobs WHERE $1 IS NULL OR kind = $1
         ORDER BY next_attempt_at DESC, id DESC"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(kind)
        .fetch_all(pool)
        .await?)
}
