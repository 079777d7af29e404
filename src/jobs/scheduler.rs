//! Runs the jobs due at a time ([`crate::domain::schedule`]) as one more queue of the job
//! queue: at start it makes sure each periodic kind's next slot is queued; each run, done,
//! queues the slot after it in the same commit. A slot missed while the daemon was down runs
//! once when it comes back, not once per missed slot.

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Work;
use crate::domain::retry::{Next, random_jitter};
use crate::domain::schedule::{JobKind, keep};
use crate::store::queue::Queue;
use crate::store::scheduled::{DueJob, Housekeeping, JobOutcome, ScheduledJob};
use crate::store::{Store, StoreError};

/// The scheduled jobs' worker.
pub struct Scheduler {
    store: Store,
    /// The longest a web session lasts (`web.session_max`): housekeeping keeps sessions
    /// younger than that (and a day more), whatever their state.
    session_max_secs: i64,
}

impl Scheduler {
    pub fn new(store: Store, session_max_secs: i64) -> Scheduler {
        Scheduler {
            store,
            session_max_secs,
        }
    }

    /// Queues the next slot of every periodic kind, unless it is queued already.
    pub async fn plan(&self) -> Result<(), StoreError> {
        let now = self.store.clock().now();
        for kind in JobKind::ALL {
            let (key, due_at) = kind.next_after(now);
            self.store
                .schedule(ScheduledJob { kind, key, due_at })
                .await?;
        }
        Ok(())
    }

    /// Runs one job; what it came to.
    async fn run_one(&self, job: &DueJob) -> Result<(), String> {
        match job.kind {
            Some(JobKind::Housekeeping) => {
                let now = self.store.clock().now();
                let gone = self
                    .store
                    .housekeep(Housekeeping {
                        sessions_ended_before: now - keep::SESSION_AFTER_END_SECS,
                        sessions_opened_before: now
                            - self.session_max_secs
                            - keep::SESSION_AFTER_END_SECS,
                        idempotency_before: now - crate::store::idempotency::KEEP_SECS,
                        jobs_settled_before: now - keep::JOB_DONE_SECS,
                    })
                    .await
                    .map_err(|e| e.to_string())?;
                if gone > 0 {
                    info!(
                        rows = gone,
                        "housekeeping: deleted rows nothing needs any more"
                    );
                }
                Ok(())
            }
            None => Err(format!(
                "unknown kind {} (written by a newer version?)",
                job.kind_name
            )),
        }
    }
}

impl Work for Scheduler {
    fn queue(&self) -> Queue {
        Queue::Scheduled
    }

    fn batch(&self) -> i64 {
        4
    }

    fn lease_secs(&self) -> i64 {
        600
    }

    async fn work(&mut self, ids: Vec<i64>, _shutdown: &CancellationToken) -> Vec<i64> {
        let jobs = match self.store.due_jobs(&ids).await {
            Ok(jobs) => jobs,
            Err(e) => {
                warn!(error = %e, "cannot load scheduled jobs; they run when their claims run out");
                return Vec::new();
            }
        };
        for job in jobs {
            let result = self.run_one(&job).await;
            let now = self.store.clock().now();
            let failures = u32::try_from(job.attempts + 1).unwrap_or(u32::MAX);
            let outcome = match (result, job.kind) {
                (Ok(()), _) => JobOutcome::Done,
                (Err(error), None) => JobOutcome::Failed { error },
                (Err(error), Some(kind)) => {
                    match kind
                        .retry()
                        .after_failure(failures, now, None, false, random_jitter())
                    {
                        Next::RetryAt(at) => JobOutcome::RetryAt { at, error },
                        Next::GiveUp => JobOutcome::Failed { error },
                    }
                }
            };
            if let JobOutcome::RetryAt { error, .. } | JobOutcome::Failed { error } = &outcome {
                warn!(job = %job.kind_name, key = %job.key, error = %error, "a scheduled job failed");
            }
            // The slot after this one, from now: a daemon back after a long stop runs a missed
            // slot once, then carries on from the present.
            let next = match (&outcome, job.kind) {
                (JobOutcome::RetryAt { .. }, _) | (_, None) => None,
                (_, Some(kind)) => {
                    let (key, due_at) = kind.next_after(now.max(job.due_at));
                    Some(ScheduledJob { kind, key, due_at })
                }
            };
            crate::metrics::count(
                &crate::metrics::metrics().scheduled_jobs,
                [
                    ("kind", job.kind.map_or("unknown", JobKind::as_str)),
                    (
                        "result",
                        match outcome {
                            JobOutcome::Done => "done",
                            JobOutcome::RetryAt { .. } => "retry",
                            JobOutcome::Failed { .. } => "failed",
                        },
                    ),
                ],
            );
            if let Err(e) = self.store.settle_job(job.id, outcome, next).await {
                warn!(error = %e, "cannot record a scheduled job's run; it runs again when its claim runs out");
            }
        }
        Vec::new()
    }
}
