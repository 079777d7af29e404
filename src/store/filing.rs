//! Filing many replies in one transaction with a fixed number of statements.
//!
//! Group commit already shares one fsync among the replies that arrive together; this shares
//! the statements too. Each statement is a round trip to SQLite's connection thread, and at
//! seven statements a reply those hand-offs, not the disk, were what limited the rate. Here a
//! batch costs four reads and five writes whatever its size: the threads, the Message-IDs
//! already filed, the sequence numbers, the participants are read once; messages,
//! notifications, events and ledger rows are each written with one multi-row INSERT.

use std::collections::{HashMap, HashSet};

use sqlx::sqlite::SqliteArguments;
// Every dynamic SQL string here is built from `$n` placeholders only; values are always bound.
use sqlx::{Arguments, AssertSqlSafe, Sqlite};

use super::inbound::{Committed, Inbound, InboundAction};
use super::threads::parse;
use super::{Posted, StoreError, WriteTx};
use crate::clock;
use crate::domain::{Mode, NotificationId, ThreadId};

/// `(…), (…)` with `$n` placeholders for `rows` rows of `cols` columns.
fn placeholders(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `$from, $from+1, …` for `n` values.
pub(super) fn placeholder_list(n: usize, from: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn bind_args() -> SqliteArguments {
    SqliteArguments::default()
}

pub(super) fn bind<'q, T>(a: &mut SqliteArguments, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Sqlite> + sqlx::Type<Sqlite> + 'q,
{
    a.add(value)
        .map_err(|e| StoreError::Invalid(format!("binding a value: {e}")))
}

struct ThreadState {
    mode: Mode,
    closed: bool,
    next_seq: i64,
    /// Active participants: (id, address), ordered by address.
    participants: Vec<(i64, String)>,
}

/// Files every item (all `InboundAction::File`, all with a thread) in `tx`. Fails as a whole
/// (a closed or unknown thread, a constraint) so the caller can retry item by item.
pub(super) async fn file_many(
    tx: &mut WriteTx,
    items: &[&Inbound],
) -> Result<Vec<Committed>, StoreError> {
    let now = clock::now();
    let mut thread_ids: Vec<i64> = Vec::new();
    for item in items {
        let t = item
            .thread
            .ok_or_else(|| StoreError::Invalid("a filing needs a thread".into()))?;
        if !thread_ids.contains(&t.0) {
            thread_ids.push(t.0);
        }
    }
    let threads = load_threads(tx, &thread_ids).await?;

    // Message-IDs filed before (in the database or earlier in this batch) are duplicates.
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i.header_message_id.as_deref())
        .collect();
    let mut filed: HashSet<(i64, String)> = HashSet::new();
    if !ids.is_empty() {
        let sql = format!(
            "SELECT thread_id, header_message_id FROM inbound
             WHERE filed_message_id IS NOT NULL AND thread_id IN ({}) AND header_message_id IN ({})",
            placeholder_list(thread_ids.len(), 1),
            placeholder_list(ids.len(), thread_ids.len() + 1)
        );
        let mut a = bind_args();
        for t in &thread_ids {
            bind(&mut a, *t)?;
        }
        for id in &ids {
            bind(&mut a, id.to_string())?;
        }
        let rows: Vec<(i64, String)> = sqlx::query_as_with(AssertSqlSafe(sql), a)
            .fetch_all(&mut **tx)
            .await?;
        filed.extend(rows);
    }
    let mut outbox_seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM outbox")
        .fetch_one(&mut **tx)
        .await?;

    let mut threads = threads;
    let mut done = Vec::with_capacity(items.len());
    let (mut messages, mut outbox, mut events, mut ledger) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for item in items {
        let InboundAction::File(message) = &item.action else {
            return Err(StoreError::Invalid("file_many takes filings only".into()));
        };
        let thread = item.thread.expect("checked above");
        let state = threads
            .get_mut(&thread.0)
            .ok_or(StoreError::UnknownThread(thread))?;
        let dedupe_key = item
            .header_message_id
            .as_ref()
            .map(|id| (thread.0, id.clone()));
        if dedupe_key.as_ref().is_some_and(|k| filed.contains(k)) {
            ledger.push((*item, "duplicate", None));
            done.push(Committed::Duplicate);
            continue;
        }
        if state.closed {
            return Err(StoreError::ThreadClosed(thread));
        }
        if let Some(k) = dedupe_key {
            filed.insert(k);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        messages.push((thread, seq, message));
        let mut notifications = Vec::new();
        for (participant, address) in &state.participants {
            if *participant == message.author.0 {
                continue;
            }
            let n = NotificationId::random();
            outbox_seq += 1;
            outbox.push((
                n,
                outbox_seq,
                thread,
                message,
                *participant,
                address.clone(),
                state.mode,
            ));
            notifications.push(n);
        }
        events.push((
            thread,
            serde_json::json!({
                "message_id": message.id.to_string(),
                "via": message.via.as_str(),
                "notifications": notifications.len(),
            })
            .to_string(),
        ));
        ledger.push((*item, "filed", Some(message.id.0)));
        done.push(Committed::Filed(Posted {
            thread_id: thread,
            message_id: message.id,
            notifications,
        }));
    }

    if !messages.is_empty() {
        let sql = format!(
            "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at) VALUES {}",
            placeholders(messages.len(), 7)
        );
        let mut a = bind_args();
        for (thread, seq, m) in &messages {
            bind(&mut a, m.id.0)?;
            bind(&mut a, thread.0)?;
            bind(&mut a, *seq)?;
            bind(&mut a, m.author.0)?;
            bind(&mut a, m.body().to_vec())?;
            bind(&mut a, m.via.as_str())?;
            bind(&mut a, now)?;
        }
        sqlx::query_with(AssertSqlSafe(sql), a)
            .execute(&mut **tx)
            .await?;
        let sql = format!(
            "UPDATE threads SET last_activity_at = $1 WHERE id IN ({})",
            placeholder_list(thread_ids.len(), 2)
        );
        let mut a = bind_args();
        bind(&mut a, now)?;
        for t in &thread_ids {
            bind(&mut a, *t)?;
        }
        sqlx::query_with(AssertSqlSafe(sql), a)
            .execute(&mut **tx)
            .await?;
    }
    if !outbox.is_empty() {
        let sql = format!(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
                                 next_attempt_at, created_at) VALUES {}",
            placeholders(outbox.len(), 10)
        );
        let mut a = bind_args();
        for (n, seq, thread, m, participant, address, mode) in &outbox {
            bind(&mut a, n.0)?;
            bind(&mut a, *seq)?;
            bind(&mut a, thread.0)?;
            bind(&mut a, m.id.0)?;
            bind(&mut a, *participant)?;
            bind(&mut a, address.clone())?;
            bind(&mut a, "message")?;
            bind(&mut a, mode.as_str())?;
            bind(&mut a, now)?;
            bind(&mut a, now)?;
        }
        sqlx::query_with(AssertSqlSafe(sql), a)
            .execute(&mut **tx)
            .await?;
    }
    if !events.is_empty() {
        let sql = format!(
            "INSERT INTO events (at, thread_id, kind, detail) VALUES {}",
            placeholders(events.len(), 4)
        );
        let mut a = bind_args();
        for (thread, detail) in &events {
            bind(&mut a, now)?;
            bind(&mut a, thread.0)?;
            bind(&mut a, "message.posted")?;
            bind(&mut a, detail.clone())?;
        }
        sqlx::query_with(AssertSqlSafe(sql), a)
            .execute(&mut **tx)
            .await?;
    }
    let sql = format!(
        "INSERT INTO inbound (id, received_at, door, thread_id, header_message_id, imap_uidvalidity,
                              imap_uid, outcome, reason, filed_message_id, raw) VALUES {}",
        placeholders(ledger.len(), 11)
    );
    let mut a = bind_args();
    for (item, outcome, filed) in &ledger {
        bind(&mut a, item.id)?;
        bind(&mut a, item.received_at)?;
        bind(&mut a, item.door.as_str())?;
        bind(&mut a, item.thread.map(|t| t.0))?;
        bind(&mut a, item.header_message_id.clone())?;
        bind(&mut a, item.imap.map(|i| i.0))?;
        bind(&mut a, item.imap.map(|i| i.1))?;
        bind(&mut a, *outcome)?;
        bind(&mut a, None::<String>)?;
        bind(&mut a, *filed)?;
        bind(&mut a, item.raw_sealed.clone())?;
    }
    sqlx::query_with(AssertSqlSafe(sql), a)
        .execute(&mut **tx)
        .await?;
    Ok(done)
}

/// Mode, status, next message number and active participants of each thread.
async fn load_threads(
    tx: &mut WriteTx,
    ids: &[i64],
) -> Result<HashMap<i64, ThreadState>, StoreError> {
    let sql = format!(
        "SELECT t.id, t.mode, t.status,
                (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.thread_id = t.id)
         FROM threads t WHERE t.id IN ({})",
        placeholder_list(ids.len(), 1)
    );
    let mut a = bind_args();
    for t in ids {
        bind(&mut a, *t)?;
    }
    let rows: Vec<(i64, String, String, i64)> = sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(&mut **tx)
        .await?;
    let mut threads = HashMap::with_capacity(rows.len());
    for (id, mode, status, max_seq) in rows {
        threads.insert(
            id,
            ThreadState {
                mode: parse("mode", &mode)?,
                closed: status == "closed",
                next_seq: max_seq + 1,
                participants: Vec::new(),
            },
        );
    }
    let sql = format!(
        "SELECT thread_id, id, address FROM participants
         WHERE thread_id IN ({}) AND revoked_at IS NULL ORDER BY address",
        placeholder_list(ids.len(), 1)
    );
    let mut a = bind_args();
    for t in ids {
        bind(&mut a, *t)?;
    }
    let rows: Vec<(i64, i64, String)> = sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(&mut **tx)
        .await?;
    for (thread, id, address) in rows {
        if let Some(t) = threads.get_mut(&thread) {
            t.participants.push((id, address));
        }
    }
    if let Some(missing) = ids.iter().find(|t| !threads.contains_key(t)) {
        return Err(StoreError::UnknownThread(ThreadId(*missing)));
    }
    Ok(threads)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::crypto::Keyring;
    use crate::domain::{Address, Mode, ParticipantId, Role, ThreadId, Via};
    use crate::store::inbound::{Committed, Door, Inbound, InboundAction};
    use crate::store::threads::SealedMessage;
    use crate::store::{NewParticipant, NewThread, Store, StoreError};

    async fn thread(store: &Store) -> (ThreadId, ParticipantId) {
        let posted = store
            .create_thread(NewThread {
                subject: "S".into(),
                mode: Mode::Convenience,
                author: NewParticipant {
                    address: Address::parse("lee@clinic.test").unwrap(),
                    display_name: None,
                    role: Role::Staff,
                },
                others: vec![NewParticipant {
                    address: Address::parse("jane@example.test").unwrap(),
                    display_name: None,
                    role: Role::Recipient,
                }],
                body: "B".into(),
                via: Via::Cli,
            })
            .await
            .unwrap();
        let view = store.thread(posted.thread_id).await.unwrap();
        let jane = view.participants.iter().find(|p| p.role == Role::Recipient);
        (posted.thread_id, jane.unwrap().id)
    }

    async fn filing(store: &Store, t: ThreadId, author: ParticipantId, mid: &str) -> Inbound {
        let key = store.thread_key(t).await.unwrap();
        Inbound {
            id: crate::domain::MessageId::random().0,
            door: Door::Smtp,
            received_at: 0,
            thread: Some(t),
            header_message_id: Some(mid.into()),
            imap: None,
            raw_sealed: None,
            action: InboundAction::File(SealedMessage::seal(t, &key, author, mid, Via::Smtp)),
        }
    }

    /// One batch over two threads: each filing numbered in its thread and announced to the
    /// staff member, the same Message-ID twice filed once, and a closed thread failing alone.
    #[tokio::test]
    async fn a_batch_files_numbers_dedupes_and_isolates_failures() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("db").display());
        let store = Store::open(&url, Arc::new(Keyring::generate()))
            .await
            .unwrap();
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
}
