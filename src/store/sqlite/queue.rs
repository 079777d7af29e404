//! The job queue on SQLite (see [`crate::store::queue`]): one claim, one release, one
//! take-back for every queue table, which share their columns (`status`, `attempts`,
//! `next_attempt_at`, `claimed_by`, `claimed_until`); scheduled jobs; leases; housekeeping.
//!
//! SQLite has one writer (this thread), so a claim's `SELECT` and `UPDATE` cannot interleave
//! with another's; a PostgreSQL engine writes the same claim with `FOR UPDATE SKIP LOCKED`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;
use crate::store::queue::{Queue, table};
use crate::store::scheduled::{Housekeeping, JobOutcome, ScheduledJob};

/// Claims up to `limit` due rows no live lease holds, for `holder` until `now + lease_secs`;
/// ids in the order they are due.
pub(super) fn claim(
    conn: &Connection,
    queue: Queue,
    holder: &str,
    limit: i64,
    lease_secs: i64,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let t = table(queue);
    let sql = format!(
        "UPDATE {name} SET claimed_by = ?1, claimed_until = ?2
         WHERE id IN (
             SELECT id FROM {name}
             WHERE {waiting} AND next_attempt_at <= ?3
               AND (claimed_until IS NULL OR claimed_until < ?3)
             ORDER BY next_attempt_at, {then} LIMIT ?4)
         RETURNING id, next_attempt_at, {then}",
        name = t.name,
        waiting = t.waiting,
        then = t.then
    );
    let mut rows: Vec<(i64, i64, i64)> = conn
        .prepare_cached(&sql)?
        .query_map(params![holder, now + lease_secs, now, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.sort_by_key(|&(_, due, then)| (due, then));
    Ok(rows.into_iter().map(|(id, _, _)| id).collect())
}

/// Gives back `holder`'s claims on `ids` (a claim another holder took over stays theirs).
pub(super) fn release(
    conn: &Connection,
    queue: Queue,
    holder: &str,
    ids: &[i64],
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET claimed_by = NULL, claimed_until = NULL WHERE id = ?1 AND claimed_by = ?2",
        table(queue).name
    );
    let mut statement = conn.prepare_cached(&sql)?;
    for id in ids {
        statement.execute(params![id, holder])?;
    }
    Ok(())
}

/// Frees every claim and lease whose holder starts with `prefix` (earlier runs of this
/// instance); returns how many.
pub(super) fn take_back(conn: &Connection, prefix: &str) -> Result<u64, StoreError> {
    let mut freed = 0;
    for queue in Queue::ALL {
        let sql = format!(
            "UPDATE {} SET claimed_by = NULL, claimed_until = NULL
             WHERE substr(claimed_by, 1, length(?1)) = ?1",
            table(queue).name
        );
        freed += conn.prepare_cached(&sql)?.execute([prefix])?;
    }
    freed += conn
        .prepare_cached("DELETE FROM leases WHERE substr(holder, 1, length(?1)) = ?1")?
        .execute([prefix])?;
    Ok(freed as u64)
}

/// Takes or renews a lease: it goes to `holder` when nobody holds it, when `holder` already
/// does, or when its holder let it run out. One statement, so two candidates cannot both win.
pub(super) fn hold_lease(
    conn: &Connection,
    name: &str,
    holder: &str,
    secs: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let won: Option<String> = conn
        .prepare_cached(
            "INSERT INTO leases (name, holder, since, until) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name) DO UPDATE SET
                 since = CASE WHEN leases.holder = excluded.holder THEN leases.since
                              ELSE excluded.since END,
                 holder = excluded.holder, until = excluded.until
             WHERE leases.holder = excluded.holder OR leases.until < excluded.since
             RETURNING holder",
        )?
        .query_row(params![name, holder, now, now + secs], |r| r.get(0))
        .optional()?;
    Ok(won.is_some())
}

pub(super) fn release_lease(conn: &Connection, name: &str, holder: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM leases WHERE name = ?1 AND holder = ?2")?
        .execute(params![name, holder])?;
    Ok(())
}

/// Queues a scheduled job unless its kind and key exist; returns how many rows were added.
pub(super) fn schedule(conn: &Connection, job: &ScheduledJob, now: i64) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached(
            "INSERT INTO scheduled_jobs (kind, key, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (kind, key) DO NOTHING",
        )?
        .execute(params![job.kind.as_str(), job.key, job.due_at, now])? as u64)
}

/// Records a run's outcome (releasing its claim) and queues the next slot.
pub(super) fn settle_scheduled(
    conn: &Connection,
    id: i64,
    outcome: &JobOutcome,
    next: Option<&ScheduledJob>,
    now: i64,
) -> Result<(), StoreError> {
    let (status, at, error) = match outcome {
        JobOutcome::Done => ("done", now, None),
        JobOutcome::RetryAt { at, error } => ("queued", *at, Some(error.as_str())),
        JobOutcome::Failed { error } => ("failed", now, Some(error.as_str())),
    };
    conn.prepare_cached(
        "UPDATE scheduled_jobs SET status = ?1, attempts = attempts + 1, last_error = ?2,
                next_attempt_at = CASE WHEN ?1 = 'queued' THEN ?3 ELSE next_attempt_at END,
                done_at = CASE WHEN ?1 = 'queued' THEN NULL ELSE ?4 END,
                claimed_by = NULL, claimed_until = NULL
         WHERE id = ?5 AND status = 'queued'",
    )?
    .execute(params![status, error, at, now, id])?;
    if let Some(next) = next {
        schedule(conn, next, now)?;
    }
    Ok(())
}

/// Deletes what nothing needs any more (see [`Housekeeping`]); returns how many rows went.
pub(super) fn housekeep(conn: &Connection, h: &Housekeeping) -> Result<u64, StoreError> {
    let mut gone = conn
        .prepare_cached(
            "DELETE FROM web_sessions
             WHERE (ended_at IS NOT NULL AND ended_at < ?1) OR created_at < ?2",
        )?
        .execute(params![h.sessions_ended_before, h.sessions_opened_before])?;
    gone += conn
        .prepare_cached("DELETE FROM idempotency WHERE created_at < ?1")?
        .execute([h.idempotency_before])?;
    gone += conn
        .prepare_cached(
            "DELETE FROM scheduled_jobs WHERE status IN ('done', 'failed') AND done_at < ?1",
        )?
        .execute([h.jobs_settled_before])?;
    Ok(gone as u64)
}
