//! Filing many replies in one transaction with a fixed number of round trips.
//!
//! Group commit already shares one fsync among the replies that arrive together; this shares
//! the statements too. Every statement, BEGIN and COMMIT is a hand-off to sqlx's SQLite thread
//! and back, and on a busy machine each hand-off waits for the scheduler. Here a batch costs
//! four hand-offs whatever its size: BEGIN, one SELECT for everything the batch needs to know
//! (threads, participants, Message-IDs already filed, sequence numbers), one multi-statement
//! query with a multi-row INSERT per table, COMMIT.

use std::collections::{HashMap, HashSet};

use sqlx::sqlite::SqliteArguments;
// Every dynamic SQL string here is built from `$n` placeholders only; values are always bound.
use sqlx::{Arguments, AssertSqlSafe, Sqlite};

use super::inbound::{Committed, Inbound, InboundAction};
use super::threads::parse;
use super::{Posted, StoreError, WriteTx};
use crate::clock;
use crate::domain::{Mode, NotificationId, ThreadId};

/// `(…), (…)` with `$n` placeholders for `rows` rows of `cols` columns, numbered from `first`.
fn placeholders_from(rows: usize, cols: usize, first: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (0..cols)
                .map(|c| format!("${}", first + r * cols + c))
                .collect();
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
    // Message-IDs filed before (in the database or earlier in this batch) are duplicates.
    let ids: Vec<&str> = items
        .iter()
        .filter_map(|i| i.header_message_id.as_deref())
        .collect();
    let (mut threads, mut filed, mut outbox_seq) = read_state(tx, &thread_ids, &ids).await?;
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

    // All writes in one multi-statement query: one hand-off to SQLite's thread, not five.
    // Parameters are numbered across the statements.
    let mut sql = String::new();
    let mut a = bind_args();
    let mut n = 0;
    let rows = |count: usize, cols: usize, n: &mut usize| {
        let p = placeholders_from(count, cols, *n + 1);
        *n += count * cols;
        p
    };
    if !messages.is_empty() {
        sql += &format!(
            "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at) VALUES {};\n",
            rows(messages.len(), 7, &mut n)
        );
        for (thread, seq, m) in &messages {
            bind(&mut a, m.id.0)?;
            bind(&mut a, thread.0)?;
            bind(&mut a, *seq)?;
            bind(&mut a, m.author.0)?;
            bind(&mut a, m.body().to_vec())?;
            bind(&mut a, m.via.as_str())?;
            bind(&mut a, now)?;
        }
        sql += &format!(
            "UPDATE threads SET last_activity_at = ${} WHERE id IN ({});\n",
            n + 1,
            placeholder_list(thread_ids.len(), n + 2)
        );
        n += 1 + thread_ids.len();
        bind(&mut a, now)?;
        for t in &thread_ids {
            bind(&mut a, *t)?;
        }
    }
    if !outbox.is_empty() {
        sql += &format!(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind, mode,
                                 next_attempt_at, created_at) VALUES {};\n",
            rows(outbox.len(), 10, &mut n)
        );
        for (id, seq, thread, m, participant, address, mode) in &outbox {
            bind(&mut a, id.0)?;
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
    }
    if !events.is_empty() {
        sql += &format!(
            "INSERT INTO events (at, thread_id, kind, detail) VALUES {};\n",
            rows(events.len(), 4, &mut n)
        );
        for (thread, detail) in &events {
            bind(&mut a, now)?;
            bind(&mut a, thread.0)?;
            bind(&mut a, "message.posted")?;
            bind(&mut a, detail.clone())?;
        }
    }
    sql += &format!(
        "INSERT INTO inbound (id, received_at, door, thread_id, header_message_id, imap_uidvalidity,
                              imap_uid, outcome, reason, filed_message_id, raw) VALUES {};",
        rows(ledger.len(), 11, &mut n)
    );
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

/// Everything a batch needs to know, in one statement: each thread's mode, status and next
/// message number, its active participants (ordered by address), which of `ids` were already
/// filed there, and the outbox's last sequence number.
async fn read_state(
    tx: &mut WriteTx,
    thread_ids: &[i64],
    ids: &[&str],
) -> Result<(HashMap<i64, ThreadState>, HashSet<(i64, String)>, i64), StoreError> {
    let threads = placeholder_list(thread_ids.len(), 1);
    let mut sql = format!(
        "SELECT 'thread', t.id, t.mode, t.status,
                (SELECT COALESCE(MAX(m.seq), 0) FROM messages m WHERE m.thread_id = t.id)
         FROM threads t WHERE t.id IN ({threads})
         UNION ALL
         SELECT 'participant', thread_id, address, NULL, id FROM participants
         WHERE thread_id IN ({threads}) AND revoked_at IS NULL
         UNION ALL
         SELECT 'outbox', NULL, NULL, NULL, (SELECT COALESCE(MAX(seq), 0) FROM outbox)"
    );
    if !ids.is_empty() {
        sql += &format!(
            " UNION ALL
             SELECT 'filed', thread_id, header_message_id, NULL, NULL FROM inbound
             WHERE filed_message_id IS NOT NULL AND thread_id IN ({threads})
               AND header_message_id IN ({})",
            placeholder_list(ids.len(), thread_ids.len() + 1)
        );
    }
    let mut a = bind_args();
    for t in thread_ids {
        bind(&mut a, *t)?;
    }
    for id in ids {
        bind(&mut a, id.to_string())?;
    }
    type Row = (
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<i64>,
    );
    let rows: Vec<Row> = sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(&mut **tx)
        .await?;
    let mut threads = HashMap::with_capacity(thread_ids.len());
    let mut participants = Vec::new();
    let (mut filed, mut outbox_seq) = (HashSet::new(), 0);
    for (kind, id, text, status, number) in rows {
        match (kind.as_str(), id, text, number) {
            ("thread", Some(id), Some(mode), Some(max_seq)) => {
                threads.insert(
                    id,
                    ThreadState {
                        mode: parse("mode", &mode)?,
                        closed: status.as_deref() == Some("closed"),
                        next_seq: max_seq + 1,
                        participants: Vec::new(),
                    },
                );
            }
            ("participant", Some(thread), Some(address), Some(id)) => {
                participants.push((thread, address, id));
            }
            ("filed", Some(thread), Some(message_id), _) => {
                filed.insert((thread, message_id));
            }
            ("outbox", _, _, Some(seq)) => outbox_seq = seq,
            (other, ..) => return Err(StoreError::Corrupt(format!("batch state row '{other}'"))),
        }
    }
    participants.sort_by(|a, b| a.1.cmp(&b.1));
    for (thread, address, id) in participants {
        if let Some(t) = threads.get_mut(&thread) {
            t.participants.push((id, address));
        }
    }
    if let Some(missing) = thread_ids.iter().find(|t| !threads.contains_key(t)) {
        return Err(StoreError::UnknownThread(ThreadId(*missing)));
    }
    Ok((threads, filed, outbox_seq))
}

#[cfg(test)]
mod tests {
    use crate::domain::{ParticipantId, ThreadId, Via};
    use crate::store::inbound::{Committed, Door, Inbound, InboundAction};
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
}
