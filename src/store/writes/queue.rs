//! The job queue's writes (see [`crate::store::queue`]): one claim, one release, one
//! take-back for every queue table, which share their columns (`status`, `attempts`,
//! `next_attempt_at`, `claimed_by`, `claimed_until`); scheduled jobs; leases; housekeeping.
//!
//! A claim is one statement. On SQLite one writer runs at a time, so its `SELECT` and
//! `UPDATE` cannot interleave with another claim's; on PostgreSQL the rows it picks are
//! locked `FOR UPDATE SKIP LOCKED`, so instances claiming at once take different rows
//! instead of waiting for each other or taking the same ones.

use crate::store::StoreError;
use crate::store::queue::{Queue, table};
use crate::store::scheduled::{Housekeeping, JobOutcome, ScheduledJob};
use crate::store::sql::{Engine, Sql, args};

/// Claims up to `limit` due rows no live lease holds, for `holder` until `now + lease_secs`;
/// ids in the order they are due.
pub(crate) fn claim(
    conn: &dyn Sql,
    queue: Queue,
    holder: &str,
    limit: i64,
    lease_secs: i64,
    now: i64,
) -> Result<Vec<i64>, StoreError> {
    let t = table(queue);
    let lock = match conn.engine() {
        Engine::Sqlite => "",
        #[cfg(feature = "postgres")]
        Engine::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    let sql = format!(
        "UPDATE {name} SET claimed_by = $1, claimed_until = $2
         WHERE id IN (
             SELECT id FROM {name}
             WHERE {waiting} AND next_attempt_at <= $3
               AND (claimed_until IS NULL OR claimed_until < $3)
             ORDER BY next_attempt_at, {then} LIMIT $4 {lock})
         RETURNING id, next_attempt_at, {then}",
        name = t.name,
        waiting = t.waiting,
        then = t.then
    );
    let mut rows: Vec<(i64, i64, i64)> = conn
        .rows(&sql, args![holder, now + lease_secs, now, limit])?
        .iter()
        .map(|r| Ok((r.int(0)?, r.int(1)?, r.int(2)?)))
        .collect::<Result<_, StoreError>>()?;
    rows.sort_by_key(|&(_, due, then)| (due, then));
    Ok(rows.into_iter().map(|(id, _, _)| id).collect())
}

/// Gives back `holder`'s claims on `ids` (a claim another holder took over stays theirs).
pub(crate) fn release(
    conn: &dyn Sql,
    queue: Queue,
    holder: &str,
    ids: &[i64],
) -> Result<(), StoreError> {
    let sql = format!(
        "UPDATE {} SET claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND claimed_by = $2",
        table(queue).name
    );
    for id in ids {
        conn.exec(&sql, args![*id, holder])?;
    }
    Ok(())
}

/// Frees every claim and lease whose holder starts with `prefix` (earlier runs of this
/// instance); returns how many.
pub(crate) fn take_back(conn: &dyn Sql, prefix: &str) -> Result<u64, StoreError> {
    let mut freed = 0;
    for queue in Queue::ALL {
        let sql = format!(
            "UPDATE {} SET claimed_by = NULL, claimed_until = NULL
             WHERE substr(claimed_by, 1, length($1)) = $1",
            table(queue).name
        );
        freed += conn.exec(&sql, args![prefix])?;
    }
    freed += conn.exec(
        "DELETE FROM leases WHERE substr(holder, 1, length($1)) = $1",
        args![prefix],
    )?;
    Ok(freed)
}

/// Takes or renews a lease: it goes to `holder` when nobody holds it, when `holder` already
/// does, or when its holder let it run out. One statement, so two candidates cannot both win.
pub(crate) fn hold_lease(
    conn: &dyn Sql,
    name: &str,
    holder: &str,
    secs: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let won = conn.row(
        "INSERT INTO leases (name, holder, since, until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET
                 since = CASE WHEN leases.holder = excluded.holder THEN leases.since
                              ELSE excluded.since END,
                 holder = excluded.holder, until = excluded.until
             WHERE leases.holder = excluded.holder OR leases.until < excluded.since
             RETURNING holder",
        args![name, holder, now, now + secs],
    )?;
    Ok(won.is_some())
}

pub(crate) fn release_lease(conn: &dyn Sql, name: &str, holder: &str) -> Result<(), StoreError> {
    conn.exec(
        "DELETE FROM leases WHERE name = $1 AND holder = $2",
        args![name, holder],
    )?;
    Ok(())
}

/// Queues a scheduled job unless its kind and key exist; returns how many rows were added.
pub(crate) fn schedule(conn: &dyn Sql, job: &ScheduledJob, now: i64) -> Result<u64, StoreError> {
    conn.exec(
        "INSERT INTO scheduled_jobs (kind, key, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT (kind, key) DO NOTHING",
        args![job.kind.as_str(), &job.key, job.due_at, now],
    )
}

/// Records a run's outcome (releasing its claim) and queues the next slot.
pub(crate) fn settle_scheduled(
    conn: &dyn Sql,
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
    conn.exec(
        "UPDATE scheduled_jobs SET status = $1, attempts = attempts + 1, last_error = $2,
                next_attempt_at = CASE WHEN $1 = 'queued' THEN $3 ELSE next_attempt_at END,
                done_at = CASE WHEN $1 = 'queued' THEN NULL ELSE $4 END,
                claimed_by = NULL, claimed_until = NULL
         WHERE id = $5 AND status = 'queued'",
        args![status, error, at, now, id],
    )?;
    if let Some(next) = next {
        schedule(conn, next, now)?;
    }
    Ok(())
}

/// Deletes what nothing needs any more (see [`Housekeeping`]); returns how many rows went.
pub(crate) fn housekeep(conn: &dyn Sql, h: &Housekeeping) -> Result<u64, StoreError> {
    let mut gone = conn.exec(
        "DELETE FROM web_sessions
         WHERE (ended_at IS NOT NULL AND ended_at < $1) OR created_at < $2",
        args![h.sessions_ended_before, h.sessions_opened_before],
    )?;
    gone += conn.exec(
        "DELETE FROM idempotency WHERE created_at < $1",
        args![h.idempotency_before],
    )?;
    gone += conn.exec(
        "DELETE FROM scheduled_jobs WHERE status IN ('done', 'failed') AND done_at < $1",
        args![h.jobs_settled_before],
    )?;
    Ok(gone)
}
