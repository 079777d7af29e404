//! The outbox: notifications waiting for, or done with, delivery.
//!
//! Rows are written by [`Store::create_thread`] and [`Store::post_message`] in the same
//! transaction as the message they announce. A worker *claims* due rows (a lease with its
//! process's id), delivers them and records the outcome. A process that dies keeps its claims
//! only until they expire, or until the next start releases them ([`Store::release_claims`]).

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, FromRow};

use super::sql::{bind, bind_args, placeholder_list};
use super::threads::{MessageRow, PARTICIPANT_COLUMNS, ParticipantRow, ThreadRow, parse};
use super::{Store, StoreError};
use crate::domain::{DeliveryStatus, Mode, NoticeReason, NotificationId, ThreadId};
use crate::store::{MessageView, ParticipantView};

/// One outbox row as `sealpost outbox list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: NotificationId,
    pub thread_id: ThreadId,
    pub recipient: String,
    /// `message`, or `notice-…` for a rejection notice.
    pub kind: String,
    pub mode: Mode,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub relay_reply: Option<String>,
}

/// What a notification may say. A secure-mode notification is loaded without opening the
/// thread's content at all, so the composer cannot leak what it never had.
#[derive(Debug, Clone)]
pub enum DeliveryContent {
    Secure,
    /// A short content-free notice to a participant whose email reply could not be filed.
    Notice(NoticeReason),
    Convenience {
        subject: String,
        /// The message being announced.
        message: MessageView,
        /// Earlier messages of the thread, newest first.
        history: Vec<MessageView>,
    },
}

/// A claimed notification with everything needed to compose and send it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: NotificationId,
    pub thread_id: ThreadId,
    pub recipient: ParticipantView,
    pub created_at: i64,
    pub attempts: i64,
    /// The Message-ID fixed at an earlier attempt, if any.
    pub email_message_id: Option<String>,
    /// Message-IDs of earlier notifications of this thread to this participant, oldest first.
    /// Empty from [`Store::deliveries`]: filled in by [`Store::fill_references`].
    pub references: Vec<String>,
    pub content: DeliveryContent,
}

#[derive(FromRow)]
struct OutboxRow {
    id: i64,
    kind: String,
    thread_id: i64,
    message_id: Option<i64>,
    participant_id: i64,
    recipient: String,
    mode: String,
    status: String,
    attempts: i64,
    last_error: Option<String>,
    email_message_id: Option<String>,
    relay_reply: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl OutboxRow {
    fn record(self) -> Result<NotificationRecord, StoreError> {
        Ok(NotificationRecord {
            id: NotificationId(self.id),
            thread_id: ThreadId(self.thread_id),
            recipient: self.recipient,
            kind: self.kind,
            mode: parse("mode", &self.mode)?,
            status: parse("status", &self.status)?,
            attempts: self.attempts,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            relay_reply: self.relay_reply,
        })
    }
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Accepted by the relay (or spool), with its reply.
    Sent { reply: String, at: i64 },
    /// A temporary failure; try again at `next_attempt_at`.
    Deferred { error: String, next_attempt_at: i64 },
    /// A permanent failure (5xx, or no attempts left).
    Failed { error: String, at: i64 },
    /// Not attempted: the recipient was removed from the thread after it was queued.
    Cancelled { at: i64 },
}

/// How many earlier messages a convenience notification quotes.
const HISTORY_LIMIT: usize = 10;

/// How many of the latest earlier Message-IDs a notification's References carries, besides
/// the first: enough for every client to thread, bounded however long the thread grows.
const REFERENCES_RECENT: usize = 9;

/// Rows whose `$column IN (…)` one of `values`; `select` ends with "IN".
async fn fetch_in<T>(
    conn: &mut sqlx::SqliteConnection,
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
    let sql = format!("{select} ({})", placeholder_list(values.len(), 1));
    let mut a = bind_args();
    for v in values {
        bind(&mut a, v)?;
    }
    Ok(sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(conn)
        .await?)
}

impl Store {
    /// Releases every claim not held by `owner`. Only valid while one process uses the database
    /// (SQLite): claims of a process that died are then known to be dead.
    pub async fn release_claims(&self, owner: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE claimed_by IS NOT NULL AND claimed_by <> $1",
        )
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Claims up to `limit` due notifications for `owner` until `now + lease_secs`.
    pub async fn claim_due(
        &self,
        owner: &str,
        now: i64,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<NotificationId>, StoreError> {
        // One statement, committed on its own (one hand-off to SQLite's thread): claim the due
        // rows and say which they were. The write lock keeps this process's writers in line.
        let _writer = self.write_lock.clone().lock_owned().await;
        let mut rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "UPDATE outbox SET claimed_by = $1, claimed_until = $2
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $3
                   AND (claimed_until IS NULL OR claimed_until < $3)
                 ORDER BY next_attempt_at, seq LIMIT $4)
             RETURNING id, next_attempt_at, seq",
        )
        .bind(owner)
        .bind(now + lease_secs)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.sort_by_key(|(_, next, seq)| (*next, *seq));
        Ok(rows
            .into_iter()
            .map(|(id, _, _)| NotificationId(id))
            .collect())
    }

    /// Gives back a claim without recording an attempt (used when shutting down).
    pub async fn unclaim(&self, id: NotificationId) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Loads a claimed batch for delivery with a fixed number of queries (rows, recipients,
    /// threads, then one range of messages per thread), opening content only for convenience
    /// mode and each message once however many notifications quote it. One result per id, in
    /// order.
    pub async fn deliveries(
        &self,
        ids: &[NotificationId],
    ) -> Result<Vec<Result<Delivery, StoreError>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.acquire().await?;
        let rows: Vec<OutboxRow> = fetch_in(
            &mut conn,
            "SELECT * FROM outbox WHERE id IN",
            ids.iter().map(|i| i.0),
        )
        .await?;
        let rows: HashMap<i64, OutboxRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        let recipients: Vec<ParticipantRow> = fetch_in(
            &mut conn,
            &format!("SELECT {PARTICIPANT_COLUMNS} FROM participants WHERE id IN"),
            rows.values().map(|r| r.participant_id),
        )
        .await?;
        // Names are sealed under their thread's key (cached, so usually no query).
        let mut recipient_views = HashMap::with_capacity(recipients.len());
        for p in recipients {
            let key = self.thread_key(ThreadId(p.thread_id)).await?;
            recipient_views.insert(p.id, p.view(&key)?);
        }
        let recipients: HashMap<i64, ParticipantView> = recipient_views;

        // Convenience notifications: their threads, and per thread the announced messages
        // with HISTORY_LIMIT before the earliest of them, in order.
        let mut announced: HashMap<i64, Vec<i64>> = HashMap::new();
        for r in rows.values() {
            if let (Some(m), "message", "convenience") =
                (r.message_id, r.kind.as_str(), r.mode.as_str())
            {
                announced.entry(r.thread_id).or_default().push(m);
            }
        }
        let threads: Vec<ThreadRow> = fetch_in(
            &mut conn,
            "SELECT * FROM threads WHERE id IN",
            announced.keys().copied(),
        )
        .await?;
        // Each announced message's window (itself and HISTORY_LIMIT before it), merged per
        // thread, so a batch announcing messages far apart reads only their windows.
        let announced_seqs: Vec<(i64, i64)> = fetch_in(
            &mut conn,
            "SELECT id, seq FROM messages WHERE id IN",
            announced.values().flatten().copied(),
        )
        .await?;
        let seq_of: HashMap<i64, i64> = announced_seqs.into_iter().collect();
        let mut opened: HashMap<i64, (String, Vec<(i64, MessageView)>)> = HashMap::new();
        for t in threads {
            let thread = ThreadId(t.id);
            let key = t.key(self)?;
            let mut seqs: Vec<i64> = announced[&t.id]
                .iter()
                .filter_map(|m| seq_of.get(m).copied())
                .collect();
            seqs.sort_unstable();
            let mut windows: Vec<(i64, i64)> = Vec::new();
            for s in seqs {
                let low = s - HISTORY_LIMIT as i64;
                match windows.last_mut() {
                    Some(w) if low <= w.1 + 1 => w.1 = s,
                    _ => windows.push((low, s)),
                }
            }
            if windows.is_empty() {
                continue;
            }
            let ranges: Vec<String> = (0..windows.len())
                .map(|k| format!("m.seq BETWEEN ${} AND ${}", 2 * k + 2, 2 * k + 3))
                .collect();
            let sql = format!(
                "SELECT m.id, m.author_id, p.address, p.display_name_sealed, m.body, m.via, m.created_at,
                        m.seq
                 FROM messages m JOIN participants p ON p.id = m.author_id
                 WHERE m.thread_id = $1 AND ({})
                 ORDER BY m.seq",
                ranges.join(" OR ")
            );
            let mut a = bind_args();
            bind(&mut a, t.id)?;
            for (low, high) in &windows {
                bind(&mut a, *low)?;
                bind(&mut a, *high)?;
            }
            let rows: Vec<MessageRow> = sqlx::query_as_with(AssertSqlSafe(sql), a)
                .fetch_all(&mut *conn)
                .await?;
            let views = rows
                .into_iter()
                .map(|m| Ok((m.seq, m.open(thread, &key)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            opened.insert(t.id, (t.subject(&key)?, views));
        }

        Ok(ids
            .iter()
            .map(|id| {
                let row = rows
                    .get(&id.0)
                    .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))?;
                let recipient = recipients.get(&row.participant_id).ok_or_else(|| {
                    StoreError::Corrupt(format!("recipient of notification {id}"))
                })?;
                let mode: Mode = parse("mode", &row.mode)?;
                let content = match (mode, row.message_id) {
                    _ if row.kind != "message" => DeliveryContent::Notice(parse::<NoticeReason>(
                        "notification kind",
                        &row.kind,
                    )?),
                    (Mode::Secure, _) => DeliveryContent::Secure,
                    (Mode::Convenience, None) => {
                        return Err(StoreError::Corrupt(format!(
                            "convenience notification {id} names no message"
                        )));
                    }
                    (Mode::Convenience, Some(message_id)) => {
                        let (subject, messages) = opened.get(&row.thread_id).ok_or_else(|| {
                            StoreError::Corrupt(format!("thread of notification {id}"))
                        })?;
                        let at = messages
                            .iter()
                            .position(|(_, m)| m.id.0 == message_id)
                            .ok_or_else(|| {
                                StoreError::Corrupt(format!("message of notification {id}"))
                            })?;
                        let seq = messages[at].0;
                        DeliveryContent::Convenience {
                            subject: subject.clone(),
                            message: messages[at].1.clone(),
                            // Newest first: the messages of its own window only.
                            history: messages[..at]
                                .iter()
                                .rev()
                                .take_while(|(s, _)| *s >= seq - HISTORY_LIMIT as i64)
                                .map(|(_, m)| m.clone())
                                .collect(),
                        }
                    }
                };
                Ok(Delivery {
                    id: *id,
                    thread_id: ThreadId(row.thread_id),
                    recipient: recipient.clone(),
                    created_at: row.created_at,
                    attempts: row.attempts,
                    email_message_id: row.email_message_id.clone(),
                    references: Vec::new(),
                    content,
                })
            })
            .collect())
    }

    /// Fills in each delivery's References: the Message-IDs of the earlier notifications of the
    /// same thread to the same participant — the first one (the thread's root) and the
    /// `REFERENCES_RECENT` latest, as RFC 5322 advises trimming long lists. Read once the
    /// batch's own Message-IDs are fixed, since earlier ones may be fixed in the same batch;
    /// one query per (thread, participant) in the batch.
    pub async fn fill_references(&self, deliveries: &mut [Delivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?;
        let seqs: Vec<(i64, i64, i64)> = fetch_in(
            &mut conn,
            "SELECT id, participant_id, seq FROM outbox WHERE id IN",
            deliveries.iter().map(|d| d.id.0),
        )
        .await?;
        let seqs: HashMap<i64, (i64, i64)> =
            seqs.into_iter().map(|(id, p, s)| (id, (p, s))).collect();
        let mut groups: HashMap<(i64, i64), Vec<i64>> = HashMap::new();
        for d in deliveries.iter() {
            if let Some((participant, seq)) = seqs.get(&d.id.0) {
                groups
                    .entry((d.thread_id.0, *participant))
                    .or_default()
                    .push(*seq);
            }
        }
        let mut earlier: HashMap<(i64, i64), Vec<(i64, String)>> = HashMap::new();
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
            .bind((group.len() + REFERENCES_RECENT) as i64)
            .fetch_all(&mut *conn)
            .await?;
            earlier.insert((*thread, *participant), rows);
        }
        for d in deliveries.iter_mut() {
            let Some((participant, seq)) = seqs.get(&d.id.0) else {
                continue;
            };
            let before: Vec<&(i64, String)> = earlier[&(d.thread_id.0, *participant)]
                .iter()
                .filter(|(s, _)| s < seq)
                .collect();
            let recent = before.len().saturating_sub(REFERENCES_RECENT);
            d.references = before
                .first()
                .filter(|_| recent > 0)
                .into_iter()
                .chain(&before[recent..])
                .map(|(_, id)| id.clone())
                .collect();
        }
        Ok(())
    }

    /// Fixes the Message-IDs of a batch on first composition (one statement); returns, in
    /// order, the Message-ID that holds for each (an earlier attempt's, if there was one).
    pub async fn fix_message_ids(
        &self,
        candidates: &[(NotificationId, String)],
    ) -> Result<Vec<String>, StoreError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let cases: String = (0..candidates.len())
            .map(|k| format!(" WHEN ${} THEN ${}", 2 * k + 1, 2 * k + 2))
            .collect();
        let ids: Vec<String> = (0..candidates.len())
            .map(|k| format!("${}", 2 * k + 1))
            .collect();
        let sql = format!(
            "UPDATE outbox SET email_message_id = COALESCE(email_message_id, CASE id{cases} END)
             WHERE id IN ({}) RETURNING id, email_message_id",
            ids.join(", ")
        );
        let mut a = bind_args();
        for (id, candidate) in candidates {
            bind(&mut a, id.0)?;
            bind(&mut a, candidate.clone())?;
        }
        let _writer = self.write_lock.clone().lock_owned().await;
        let fixed: HashMap<i64, String> = sqlx::query_as_with(AssertSqlSafe(sql), a)
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .collect();
        candidates
            .iter()
            .map(|(id, _)| {
                fixed
                    .get(&id.0)
                    .cloned()
                    .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))
            })
            .collect()
    }

    /// Records the outcomes of a batch of delivery attempts in one transaction with one
    /// multi-statement query (an UPDATE per notification, one INSERT of their events),
    /// releasing the claims.
    pub async fn record_attempts(
        &self,
        attempts: &[(NotificationId, Attempt)],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut sql = String::new();
        let mut a = bind_args();
        let mut events = Vec::with_capacity(attempts.len());
        for (k, (id, attempt)) in attempts.iter().enumerate() {
            let (status, error, reply, next, sent_at) = match attempt {
                Attempt::Sent { reply, at } => ("sent", None, Some(reply.clone()), *at, Some(*at)),
                Attempt::Deferred {
                    error,
                    next_attempt_at,
                } => (
                    "deferred",
                    Some(error.clone()),
                    None,
                    *next_attempt_at,
                    None,
                ),
                Attempt::Failed { error, at } => ("failed", Some(error.clone()), None, *at, None),
                Attempt::Cancelled { at } => (
                    "cancelled",
                    Some("participant removed".to_owned()),
                    None,
                    *at,
                    None,
                ),
            };
            let p = 6 * k;
            sql += &format!(
                "UPDATE outbox SET status = ${0},
                        attempts = attempts + CASE WHEN ${0} = 'cancelled' THEN 0 ELSE 1 END,
                        last_error = ${1},
                        relay_reply = COALESCE(${2}, relay_reply), next_attempt_at = ${3},
                        sent_at = COALESCE(${4}, sent_at), claimed_by = NULL, claimed_until = NULL
                 WHERE id = ${5};\n",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6
            );
            bind(&mut a, status)?;
            bind(&mut a, error)?;
            bind(&mut a, reply)?;
            bind(&mut a, next)?;
            bind(&mut a, sent_at)?;
            bind(&mut a, id.0)?;
            events.push((p + 6, status, id));
        }
        let base = 6 * attempts.len();
        let values: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(k, (id_param, _, _))| {
                format!(
                    "(${}, (SELECT thread_id FROM outbox WHERE id = ${id_param}), ${}, ${})",
                    base + 1,
                    base + 2 + 2 * k,
                    base + 3 + 2 * k
                )
            })
            .collect();
        sql += &format!(
            "INSERT INTO events (at, thread_id, kind, detail) VALUES {};",
            values.join(", ")
        );
        bind(&mut a, crate::clock::now())?;
        for (_, status, id) in &events {
            bind(&mut a, format!("notification.{status}"))?;
            bind(
                &mut a,
                serde_json::json!({"notification_id": id.to_string()}).to_string(),
            )?;
        }
        let mut tx = self.write_tx().await?;
        sqlx::query_with(AssertSqlSafe(sql), a)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Outbox rows, newest first, optionally filtered by status and thread.
    pub async fn list_notifications(
        &self,
        status: Option<DeliveryStatus>,
        thread: Option<ThreadId>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows: Vec<OutboxRow> = sqlx::query_as(
            "SELECT * FROM outbox
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR thread_id = $2)
             ORDER BY seq DESC",
        )
        .bind(status.map(DeliveryStatus::as_str))
        .bind(thread.map(|t| t.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(OutboxRow::record).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Via};
    use crate::store::testing;

    /// One batch announcing messages far apart in a long thread: each quotes the ten messages
    /// before its own, nothing from the other's window.
    #[tokio::test]
    async fn a_batch_quotes_each_notifications_own_history() {
        // Keep the whole fixture: dropping its directory would delete the database.
        let fixture = testing::open().await;
        let store = fixture.store.clone();
        let lee = Address::parse(testing::LEE).unwrap();
        let first = testing::clinic_thread(&store, "m1").await;
        let mut notifications = vec![first.notifications[0]];
        for n in 2..=30 {
            let posted = store
                .post_message(first.thread_id, &lee, &format!("m{n}"), Via::Cli)
                .await
                .unwrap();
            notifications.push(posted.notifications[0]);
        }
        let batch = [notifications[2], notifications[29], notifications[12]];
        let loaded = store.deliveries(&batch).await.unwrap();
        let quoted = |d: &Delivery| match &d.content {
            DeliveryContent::Convenience {
                message, history, ..
            } => (
                message.body.clone(),
                history.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
            ),
            _ => panic!("a convenience notification"),
        };
        let names = |r: std::ops::RangeInclusive<i32>| r.rev().map(|n| format!("m{n}")).collect();
        let (m3, h3) = quoted(loaded[0].as_ref().unwrap());
        assert_eq!((m3.as_str(), h3), ("m3", names(1..=2)));
        let (m30, h30) = quoted(loaded[1].as_ref().unwrap());
        assert_eq!((m30.as_str(), h30), ("m30", names(20..=29)));
        let (m13, h13) = quoted(loaded[2].as_ref().unwrap());
        assert_eq!((m13.as_str(), h13), ("m13", names(3..=12)));

        // What reply-text extraction is told was sent: the eleven latest messages, plus the
        // window of an older notification the reply answers.
        let key = store.thread_key(first.thread_id).await.unwrap();
        let mut sent = store
            .sent_bodies(first.thread_id, &key, Some(notifications[2]), 11)
            .await
            .unwrap();
        sent.sort_by_key(|b| b[1..].parse::<i32>().unwrap());
        let expected: Vec<String> = (1..=3).chain(20..=30).map(|n| format!("m{n}")).collect();
        assert_eq!(sent, expected);
        let latest = store
            .sent_bodies(first.thread_id, &key, None, 11)
            .await
            .unwrap();
        assert_eq!(latest.len(), 11);
    }
}
