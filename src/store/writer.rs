//! Committing inbound mail: a synchronous SQLite connection that writes a whole batch at once.
//!
//! Group commit shares one transaction and one fsync among the replies that arrive together;
//! the committer's thread then waits on nothing but the disk. The rest of the store goes
//! through sqlx, whose SQLite driver runs every statement on a worker thread of its own: each
//! statement, BEGIN and COMMIT is a hand-off there and back, and on a busy two-core machine
//! each hand-off waits for the scheduler — measured, those waits were most of a commit. Here
//! the committing thread owns its connection and runs the batch's statements itself (prepared
//! once, cached), so a batch costs one wake-up however many replies it holds.
//!
//! Every item runs inside its own savepoint: one that fails (a thread closed a moment ago, a
//! constraint) is rolled back alone and answered with its error, and the others commit.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::held::{Release, SealedHeld};
use super::inbound::{Committed, Inbound, InboundAction};
use super::threads::parse;
use super::{Posted, Store, StoreError};
use crate::clock;
use crate::domain::{LedgerOutcome, Mode, NoticeReason, NotificationId, ParticipantId, ThreadId};
use crate::store::SealedMessage;

/// A connection for committing inbound outcomes; used from one thread that may block.
pub struct InboundWriter {
    conn: Connection,
    write_lock: Arc<tokio::sync::Mutex<()>>,
}

impl Store {
    /// Opens a connection for committing inbound outcomes. Its calls block: use it from a
    /// thread of its own (the committer) or `spawn_blocking`.
    pub fn inbound_writer(&self) -> Result<InboundWriter, StoreError> {
        Ok(InboundWriter {
            conn: open(&self.path)?,
            write_lock: self.write_lock.clone(),
        })
    }

    /// Commits a batch of inbound outcomes; one result per item, in order. For occasional
    /// callers: it opens a connection each time. The daemon commits through its committer.
    pub async fn commit_inbound(&self, items: Vec<Inbound>) -> Vec<Result<Committed, StoreError>> {
        let store = self.clone();
        let n = items.len();
        let done = tokio::task::spawn_blocking(move || {
            store.inbound_writer().map(|mut w| w.commit(&items))
        })
        .await;
        match done {
            Ok(Ok(results)) => results,
            Ok(Err(e)) => fail_all(n, e),
            Err(e) => fail_all(n, StoreError::Invalid(format!("the commit stopped: {e}"))),
        }
    }
}

/// The same settings as the sqlx pool's connections (see [`Store::open`]).
fn open(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Invalid(format!(
            "the database refused write-ahead logging (journal mode {mode})"
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA secure_delete = on;
         PRAGMA temp_store = MEMORY;",
    )?;
    Ok(conn)
}

/// Answers every item of a batch with the error that stopped the batch as a whole.
fn fail_all(n: usize, e: StoreError) -> Vec<Result<Committed, StoreError>> {
    let text = e.to_string();
    let mut first = Some(e);
    (0..n)
        .map(|_| {
            Err(first
                .take()
                .unwrap_or_else(|| StoreError::Batch(text.clone())))
        })
        .collect()
}

impl InboundWriter {
    /// Commits `items` in one transaction; one result per item, in order. Blocks: takes the
    /// process's write lock, writes, and returns once the commit is on disk.
    pub fn commit(&mut self, items: &[Inbound]) -> Vec<Result<Committed, StoreError>> {
        let lock = self.write_lock.clone();
        let _guard = lock.blocking_lock();
        self.commit_locked(items)
            .unwrap_or_else(|e| fail_all(items.len(), e))
    }

    fn commit_locked(
        &mut self,
        items: &[Inbound],
    ) -> Result<Vec<Result<Committed, StoreError>>, StoreError> {
        let now = clock::now();
        let mut tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(items.len());
        for item in items {
            let sp = tx.savepoint()?;
            match apply(&sp, item, now) {
                Ok(done) => {
                    sp.commit()?;
                    results.push(Ok(done));
                }
                Err(e) => {
                    sp.finish()?; // rolls this item back, keeps the others
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    }
}

fn apply(conn: &Connection, item: &Inbound, now: i64) -> Result<Committed, StoreError> {
    match &item.action {
        InboundAction::File {
            message,
            raw,
            release,
        } => file(conn, item, message, raw, release.as_ref(), now),
        InboundAction::Hold { held, notice } => hold(conn, item, held, *notice, now),
        InboundAction::Record {
            outcome,
            reason,
            notice,
        } => {
            ledger(conn, item, *outcome, Some(reason), None, None)?;
            let notice_queued = match (notice, item.thread) {
                (Some((participant, why)), Some(thread)) => {
                    queue_notice(conn, thread, *participant, *why, now)?
                }
                _ => false,
            };
            event(
                conn,
                item.thread,
                &format!("inbound.{}", outcome.as_str()),
                serde_json::json!({"reason": reason, "door": item.door.as_str(), "notice_queued": notice_queued}),
                now,
            )?;
            Ok(Committed::Recorded { notice_queued })
        }
        InboundAction::DeliveryStatus {
            notification,
            failed,
            verified,
            detail,
        } => {
            // Only a report that reached the notification's own bounce address with a null
            // sender is evidence; anyone can write a report naming a Message-ID.
            let applies = *failed && *verified;
            if applies {
                conn.prepare_cached(
                    "UPDATE outbox SET status = 'bounced', last_error = ?1
                     WHERE id = ?2 AND status IN ('sent', 'queued', 'deferred')",
                )?
                .execute(params![detail, notification.0])?;
            }
            ledger(
                conn,
                item,
                LedgerOutcome::DeliveryStatus,
                Some(detail),
                None,
                None,
            )?;
            let kind = match (failed, verified) {
                (_, false) => "notification.delivery-report-unverified",
                (true, true) => "notification.bounced",
                (false, true) => "notification.delivery-report",
            };
            event(
                conn,
                item.thread,
                kind,
                serde_json::json!({"notification_id": notification.to_string(), "detail": detail}),
                now,
            )?;
            Ok(Committed::StatusUpdated {
                notification: *notification,
            })
        }
    }
}

/// Puts a message in the held queue: the sealed row, its ledger row, an event, and perhaps a
/// content-free notice to its (verified) participant.
fn hold(
    conn: &Connection,
    item: &Inbound,
    held: &SealedHeld,
    notice: Option<(ParticipantId, NoticeReason)>,
    now: i64,
) -> Result<Committed, StoreError> {
    let (key_id, wrapped, envelope, raw, size) = held.columns();
    conn.prepare_cached(
        "INSERT INTO held (id, received_at, door, reason, thread_id, participant_id,
                           header_message_id, size, key_id, wrapped_key, envelope, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        item.id,
        item.received_at,
        item.door.as_str(),
        held.reason.as_str(),
        item.thread.map(|t| t.0),
        held.participant.map(|p| p.0),
        item.header_message_id,
        size,
        key_id,
        wrapped,
        envelope,
        raw
    ])?;
    ledger(
        conn,
        item,
        LedgerOutcome::Held,
        Some(held.reason.as_str()),
        None,
        None,
    )?;
    let notice_queued = match (notice, item.thread) {
        (Some((participant, why)), Some(thread)) => {
            queue_notice(conn, thread, participant, why, now)?
        }
        _ => false,
    };
    event(
        conn,
        item.thread,
        "inbound.held",
        serde_json::json!({
            "held_id": format!("{:016x}", item.id),
            "reason": held.reason.as_str(),
            "door": item.door.as_str(),
            "notice_queued": notice_queued,
        }),
        now,
    )?;
    Ok(Committed::Held { id: item.id })
}

/// Files a reply: the message, a notification for every other active participant, an event
/// and the ledger row — unless this Message-ID was filed in the thread before. The message and
/// its notifications are the rows `threads::insert_message` writes for staff posts; keep the
/// two in step.
fn file(
    conn: &Connection,
    item: &Inbound,
    message: &SealedMessage,
    raw: &[u8],
    release: Option<&Release>,
    now: i64,
) -> Result<Committed, StoreError> {
    let thread = item
        .thread
        .ok_or_else(|| StoreError::Invalid("a filing needs a thread".into()))?;
    let (mode, status): (String, String) = conn
        .prepare_cached("SELECT mode, status FROM threads WHERE id = ?1")?
        .query_row([thread.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::UnknownThread(thread))?;
    // Removal is immediate: a participant removed after their reply was checked at RCPT or
    // decided by the pipeline is refused here, where no removal can slip in between.
    let revoked = conn
        .prepare_cached(
            "SELECT revoked_at IS NOT NULL FROM participants WHERE id = ?1 AND thread_id = ?2",
        )?
        .query_row(params![message.author.0, thread.0], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(true);
    if revoked {
        return Err(StoreError::Revoked(thread));
    }
    if let Some(release) = release {
        let updated = conn
            .prepare_cached(
                "UPDATE held SET status = 'released', decided_at = ?1, decided_by = ?2
                 WHERE id = ?3 AND status = 'held'",
            )?
            .execute(params![now, release.by, release.held])?;
        if updated == 0 {
            return Err(StoreError::HeldDecided(release.held));
        }
        event(
            conn,
            Some(thread),
            "held.released",
            serde_json::json!({"held_id": format!("{:016x}", release.held), "by": release.by}),
            now,
        )?;
    }
    if let Some(id) = &item.header_message_id {
        let filed_before = conn
            .prepare_cached(
                "SELECT 1 FROM inbound
                 WHERE thread_id = ?1 AND header_message_id = ?2 AND filed_message_id IS NOT NULL",
            )?
            .exists(params![thread.0, id])?;
        if filed_before {
            ledger(conn, item, LedgerOutcome::Duplicate, None, None, None)?;
            return Ok(Committed::Duplicate);
        }
    }
    if status == "closed" {
        return Err(StoreError::ThreadClosed(thread));
    }
    let mode: Mode = parse("mode", &mode)?;
    conn.prepare_cached(
        "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE thread_id = ?2),
                 ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        message.id.0,
        thread.0,
        message.author.0,
        message.body(),
        message.via.as_str(),
        now
    ])?;
    conn.prepare_cached("UPDATE threads SET last_activity_at = ?1 WHERE id = ?2")?
        .execute(params![now, thread.0])?;
    let recipients: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, address FROM participants
             WHERE thread_id = ?1 AND id <> ?2 AND revoked_at IS NULL ORDER BY address",
        )?
        .query_map(params![thread.0, message.author.0], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut notifications = Vec::with_capacity(recipients.len());
    for (participant, address) in recipients {
        let n = NotificationId::random();
        conn.prepare_cached(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                                 mode, next_attempt_at, created_at)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, ?3, ?4, ?5,
                     'message', ?6, ?7, ?7)",
        )?
        .execute(params![
            n.0,
            thread.0,
            message.id.0,
            participant,
            address,
            mode.as_str(),
            now
        ])?;
        notifications.push(n);
    }
    event(
        conn,
        Some(thread),
        "message.posted",
        serde_json::json!({
            "message_id": message.id.to_string(),
            "via": message.via.as_str(),
            "notifications": notifications.len(),
        }),
        now,
    )?;
    ledger(
        conn,
        item,
        LedgerOutcome::Filed,
        None,
        Some(message.id.0),
        Some(raw),
    )?;
    Ok(Committed::Filed(Posted {
        thread_id: thread,
        message_id: message.id,
        notifications,
    }))
}

/// Queues a content-free notice to a verified participant, at most one a day each. Returns
/// whether one was queued.
fn queue_notice(
    conn: &Connection,
    thread: ThreadId,
    participant: ParticipantId,
    why: NoticeReason,
    now: i64,
) -> Result<bool, StoreError> {
    let recent: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM outbox
             WHERE participant_id = ?1 AND kind LIKE 'notice-%' AND created_at > ?2",
        )?
        .query_row(params![participant.0, now - 86_400], |r| r.get(0))?;
    if recent > 0 {
        return Ok(false);
    }
    let (address, mode, revoked): (String, String, bool) = conn
        .prepare_cached(
            "SELECT p.address, t.mode, p.revoked_at IS NOT NULL
             FROM participants p JOIN threads t ON t.id = p.thread_id
             WHERE p.id = ?1",
        )?
        .query_row([participant.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if revoked {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                             mode, next_attempt_at, created_at)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, NULL, ?3, ?4, ?5,
                 ?6, ?7, ?7)",
    )?
    .execute(params![
        NotificationId::random().0,
        thread.0,
        participant.0,
        address,
        why.as_str(),
        mode,
        now
    ])?;
    Ok(true)
}

/// The inbound ledger row: every decided message leaves one (dedupe and audit). Only a filed
/// message keeps its raw copy here (`raw`, sealed); a held one keeps it in the held queue, and
/// nothing else is kept.
fn ledger(
    conn: &Connection,
    item: &Inbound,
    outcome: LedgerOutcome,
    reason: Option<&str>,
    filed: Option<i64>,
    raw: Option<&[u8]>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbound (id, received_at, door, thread_id, header_message_id,
                              imap_uidvalidity, imap_uid, outcome, reason, filed_message_id, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        item.id,
        item.received_at,
        item.door.as_str(),
        item.thread.map(|t| t.0),
        item.header_message_id,
        item.imap.map(|i| i.0),
        item.imap.map(|i| i.1),
        outcome.as_str(),
        reason,
        filed,
        raw,
    ])?;
    Ok(())
}

fn event(
    conn: &Connection,
    thread: Option<ThreadId>,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at, thread_id, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now, thread.map(|t| t.0), kind, detail.to_string()])?;
    Ok(())
}
#[cfg(test)]
mod tests {
    use crate::domain::{ParticipantId, ThreadId, Via};
    use crate::store::inbound::{Committed, Inbound, InboundAction};
    use crate::store::testing;
    use crate::store::threads::SealedMessage;
    use crate::store::{Store, StoreError};

    async fn thread(store: &Store) -> (ThreadId, ParticipantId) {
        let t = testing::clinic_thread(store, "B").await.thread_id;
        (t, testing::jane(store, t).await)
    }

    async fn filing(store: &Store, t: ThreadId, author: ParticipantId, mid: &str) -> Inbound {
        let key = store.thread_key(t).await.unwrap();
        Inbound {
            id: crate::domain::MessageId::random().0,
            door: Via::Smtp,
            received_at: 0,
            thread: Some(t),
            header_message_id: Some(mid.into()),
            imap: None,
            action: InboundAction::File {
                message: SealedMessage::seal(t, &key, author, mid, Via::Smtp),
                raw: Vec::new(),
                release: None,
            },
        }
    }

    /// One batch over two threads: each filing numbered in its thread and announced to the
    /// staff member, the same Message-ID twice filed once, and a closed thread failing alone.
    #[tokio::test]
    async fn a_batch_files_numbers_dedupes_and_isolates_failures() {
        // Keep the whole fixture: dropping its directory would delete the database.
        let fixture = testing::open().await;
        let store = fixture.store.clone();
        let (a, jane_a) = thread(&store).await;
        let (b, jane_b) = thread(&store).await;
        let (closed, jane_c) = thread(&store).await;
        store.close_thread(closed).await.unwrap();
        let items = vec![
            filing(&store, a, jane_a, "<1@x>").await,
            filing(&store, b, jane_b, "<2@x>").await,
            filing(&store, a, jane_a, "<1@x>").await,
            filing(&store, a, jane_a, "<3@x>").await,
            filing(&store, closed, jane_c, "<4@x>").await,
        ];
        let results = store.commit_inbound(items).await;
        assert!(matches!(&results[0], Ok(Committed::Filed(p)) if p.notifications.len() == 1));
        assert!(matches!(&results[1], Ok(Committed::Filed(_))));
        assert!(matches!(&results[2], Ok(Committed::Duplicate)));
        assert!(matches!(&results[3], Ok(Committed::Filed(_))));
        assert!(matches!(&results[4], Err(StoreError::ThreadClosed(t)) if *t == closed));

        let view = store.thread(a).await.unwrap();
        let bodies: Vec<&str> = view.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["B", "<1@x>", "<3@x>"]);
        assert_eq!(store.thread(b).await.unwrap().messages.len(), 2);
        assert_eq!(store.thread(closed).await.unwrap().messages.len(), 1);

        // A later batch recognises what the first one filed.
        let again = store
            .commit_inbound(vec![filing(&store, a, jane_a, "<3@x>").await])
            .await;
        assert!(matches!(&again[0], Ok(Committed::Duplicate)));
        assert_eq!(store.thread(a).await.unwrap().messages.len(), 3);
    }

    /// An item that fails after some of its rows were written (here its ledger row, the last
    /// one) leaves none of them behind — no message, no notification — and the items before
    /// and after it in the batch are filed.
    #[tokio::test]
    async fn a_failing_item_is_rolled_back_whole_and_alone() {
        let fixture = testing::open().await;
        let store = fixture.store.clone();
        let (t, jane) = thread(&store).await;
        sqlx::query(
            "CREATE TRIGGER refuse_bad BEFORE INSERT ON inbound WHEN NEW.header_message_id = '<bad@x>'
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        let before = store.list_notifications(None, Some(t)).await.unwrap().len();
        let items = vec![
            filing(&store, t, jane, "<good-1@x>").await,
            filing(&store, t, jane, "<bad@x>").await,
            filing(&store, t, jane, "<good-2@x>").await,
        ];
        let results = store.commit_inbound(items).await;
        assert!(matches!(&results[0], Ok(Committed::Filed(_))));
        assert!(
            matches!(&results[1], Err(StoreError::Sqlite(_))),
            "{:?}",
            results[1]
        );
        assert!(matches!(&results[2], Ok(Committed::Filed(_))));

        let view = store.thread(t).await.unwrap();
        let bodies: Vec<&str> = view.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["B", "<good-1@x>", "<good-2@x>"]);
        let seqs: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM messages WHERE thread_id = $1 ORDER BY seq")
                .bind(t.0)
                .fetch_all(&store.pool)
                .await
                .unwrap();
        assert_eq!(seqs, [1, 2, 3], "no gap where the failed item was");
        let after = store.list_notifications(None, Some(t)).await.unwrap().len();
        assert_eq!(after - before, 2, "one staff notification per filed reply");
    }
}
