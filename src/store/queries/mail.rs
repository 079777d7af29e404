//! Mail in and out: what was received (duplicates, IMAP outcomes, held mail, the ledger),
//! notifications and what they quote, and the audit trail's events.

use std::collections::HashMap;

use sqlx::AssertSqlSafe;

use crate::domain::{DeliveryStatus, HeldStatus, NotificationId, ParticipantId, ThreadId};
use crate::store::StoreError;
use crate::store::rows::{
    DeliveryRows, EarlierIds, HeldRow, MessageRow, OutboxRow, ParticipantRow, ThreadRow,
};

use super::*;

/// Whether `header` was filed in `thread`, or is held there undecided.
pub(crate) async fn already_received(
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
        let mut a = Args::default();
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
    pool: &Pool,
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
    pool: &Pool,
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

/// Counts of what is stored, for metrics: (table, status, count) for the outbox, webhook
/// deliveries and held mail.
pub(crate) async fn status_counts(pool: &Pool) -> Result<Vec<(String, String, i64)>, StoreError> {
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

/// Audit events after `after` (id, at, thread_id, kind, detail), oldest first.
pub(crate) async fn events_after(
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
    status: Option<HeldStatus>,
) -> Result<Vec<HeldRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT * FROM held WHERE ($1 IS NULL OR status = $1) ORDER BY received_at DESC, id",
    )
    .bind(status.map(HeldStatus::as_str))
    .fetch_all(pool)
    .await?)
}

pub(crate) async fn held(pool: &Pool, id: i64) -> Result<HeldRow, StoreError> {
    sqlx::query_as("SELECT * FROM held WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownHeld(id))
}
