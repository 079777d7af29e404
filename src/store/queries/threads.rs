//! Threads as they are read: one whole (participants, messages, reads), in lists and pages, and
//! what a reply token names.

use sqlx::AssertSqlSafe;

use crate::domain::{ParticipantId, ThreadId};
use crate::store::StoreError;
use crate::store::rows::{TargetRow, ThreadCountsRow, ThreadRow, WholeThread};

use super::*;

pub(crate) async fn thread(pool: &Pool, id: ThreadId) -> Result<ThreadRow, StoreError> {
    sqlx::query_as("SELECT * FROM threads WHERE id = $1")
        .bind(id.0)
        .fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownThread(id))
}

pub(crate) async fn thread_whole(pool: &Pool, id: ThreadId) -> Result<WholeThread, StoreError> {
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
pub(crate) async fn threads(pool: &Pool) -> Result<Vec<ThreadCountsRow>, StoreError> {
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
    pool: &Pool,
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
    pool: &Pool,
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

/// The read receipts of a thread's messages: (message, participant, read_at).
pub(crate) async fn thread_reads(
    pool: &Pool,
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

/// Every thread's id.
pub(crate) async fn thread_ids(pool: &Pool) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT id FROM threads ORDER BY id")
        .fetch_all(pool)
        .await?)
}

/// What is known about a message when its author asks to take it back (see
/// [`crate::store::writes::web::CANCEL_FACTS`]); `None` when it is not in the thread.
pub(crate) async fn cancel_facts(
    pool: &Pool,
    thread: ThreadId,
    message: crate::domain::MessageId,
    author: ParticipantId,
) -> Result<Option<crate::domain::message::CancelFacts>, StoreError> {
    let row: Option<(bool, bool, bool, bool, bool, bool, bool)> =
        sqlx::query_as(crate::store::writes::web::CANCEL_FACTS)
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
