//! The job queue's reads: when work is next due, who holds a lease, scheduled jobs.

use sqlx::AssertSqlSafe;

use crate::store::StoreError;

use super::Pool;

/// When the next row of `queue` becomes claimable: due, and any lease on it run out.
pub(crate) async fn next_due(
    pool: &Pool,
    queue: crate::store::queue::Queue,
) -> Result<Option<i64>, StoreError> {
    let t = crate::store::queue::table(queue);
    let sql = format!(
        "SELECT MIN(CASE WHEN next_attempt_at > COALESCE(claimed_until + 1, 0)
                         THEN next_attempt_at ELSE COALESCE(claimed_until + 1, 0) END)
         FROM {} WHERE {}",
        t.name, t.waiting
    );
    Ok(sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_one(pool)
        .await?)
}

/// Who holds the lease `name` at `now` and until when, if its holder has not let it run out.
pub(crate) async fn lease_holder(
    pool: &Pool,
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
    pool: &Pool,
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
    pool: &Pool,
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
