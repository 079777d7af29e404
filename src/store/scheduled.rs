//! Jobs due at a time (see [`crate::domain::schedule`]): queued once per kind and key, run
//! through the job queue like every other background work ([`super::queue::Queue::Scheduled`]).

use super::ops::{Done, Op};
use super::{Store, StoreError, unexpected};
use crate::domain::schedule::JobKind;

/// A job to queue: its kind, its key (unique per kind) and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledJob {
    pub kind: JobKind,
    pub key: String,
    pub due_at: i64,
}

/// A claimed job, as a worker runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueJob {
    pub id: i64,
    /// `None`: a kind this version does not know (written by a newer one).
    pub kind: Option<JobKind>,
    pub kind_name: String,
    pub key: String,
    pub attempts: i64,
    pub due_at: i64,
}

/// What a run came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    Done,
    RetryAt { at: i64, error: String },
    Failed { error: String },
}

/// A scheduled job as listed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub key: String,
    pub status: String,
    pub attempts: i64,
    pub due_at: i64,
    pub done_at: Option<i64>,
    pub last_error: Option<String>,
}

/// What housekeeping deletes: rows older than these times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Housekeeping {
    /// Web sessions that ended before this.
    pub sessions_ended_before: i64,
    /// Web sessions opened before this (past the longest a session may last, and then some).
    pub sessions_opened_before: i64,
    /// Idempotency-Keys first used before this.
    pub idempotency_before: i64,
    /// Scheduled jobs done (or failed) before this.
    pub jobs_settled_before: i64,
}

impl Store {
    /// Queues `job` unless a job of its kind and key exists (queued, done or failed). True: it
    /// was queued now.
    pub async fn schedule(&self, job: ScheduledJob) -> Result<bool, StoreError> {
        match self.write(Op::Schedule(job)).await? {
            Done::Count(n) => Ok(n > 0),
            _ => Err(unexpected("schedule")),
        }
    }

    /// The claimed jobs `ids`, in order (a row gone meanwhile is left out).
    pub async fn due_jobs(&self, ids: &[i64]) -> Result<Vec<DueJob>, StoreError> {
        let mut jobs = Vec::with_capacity(ids.len());
        for &id in ids {
            if let Some(j) = self.backend().scheduled_job(id).await? {
                jobs.push(DueJob {
                    id: j.id,
                    kind: JobKind::parse(&j.kind),
                    kind_name: j.kind,
                    key: j.key,
                    attempts: j.attempts,
                    due_at: j.due_at,
                });
            }
        }
        Ok(jobs)
    }

    /// Records what the run of job `id` came to and, in the same commit, queues `next` (the
    /// following slot of a periodic job).
    pub async fn settle_job(
        &self,
        id: i64,
        outcome: JobOutcome,
        next: Option<ScheduledJob>,
    ) -> Result<(), StoreError> {
        self.write(Op::SettleScheduled { id, outcome, next })
            .await
            .map(drop)
    }

    /// Deletes what nothing needs any more; returns how many rows went.
    pub async fn housekeep(&self, h: Housekeeping) -> Result<u64, StoreError> {
        match self.write(Op::Housekeep(h)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("housekeep")),
        }
    }

    /// Every scheduled job of `kind` (all kinds: `None`), newest due first.
    pub async fn scheduled_jobs(&self, kind: Option<JobKind>) -> Result<Vec<JobView>, StoreError> {
        self.backend()
            .scheduled_jobs(kind.map(JobKind::as_str))
            .await
    }
}
