//! The durable job queue: every piece of background work — a notification to send, a webhook
//! delivery, a text message, a job due at a time — is a row that a worker *claims* with a
//! lease, works on, and settles (done, or due again later). One mechanism for all of them:
//!
//! - a claim takes due rows no live lease holds, oldest due first, and leases them to its
//!   holder until `now + lease`; an engine with row locks skips rows another claim is taking
//!   (`FOR UPDATE SKIP LOCKED`), so two workers on one database claim disjoint work;
//! - a lease that expires is taken over by the next claim: a worker that died, hung or lost
//!   its database connection holds nothing for longer than its lease;
//! - a worker that stops before working on a claimed row gives it back ([`Store::release`]);
//! - at start, an instance takes back what *its own* earlier runs held ([`Store::take_back`]),
//!   never what other instances hold;
//! - [`Store::next_due`] says when the next row becomes claimable, so an idle worker sleeps
//!   until then (a read, no write).
//!
//! Leases of singleton parts (the IMAP poller) use the same idea on one named row
//! ([`Store::hold_lease`]).

use super::ops::{Done, Op};
use super::{Store, StoreError, unexpected};

/// A queue of durable background work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Notifications and notices by email (the outbox).
    Notifications,
    /// Events for the practice's webhook subscriptions.
    WebhookDeliveries,
    /// Sign-in codes by text message.
    TextMessages,
    /// Jobs due at a time ([`crate::domain::schedule`]).
    Scheduled,
}

impl Queue {
    pub const ALL: [Queue; 4] = [
        Queue::Notifications,
        Queue::WebhookDeliveries,
        Queue::TextMessages,
        Queue::Scheduled,
    ];

    /// A name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Queue::Notifications => "outbox",
            Queue::WebhookDeliveries => "webhooks",
            Queue::TextMessages => "sms",
            Queue::Scheduled => "scheduled",
        }
    }
}

impl Store {
    /// Claims up to `limit` due rows of `queue` for `holder` for `lease_secs`, in the order
    /// they are due.
    pub async fn claim(
        &self,
        queue: Queue,
        holder: &str,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<i64>, StoreError> {
        match self
            .write(Op::Claim {
                queue,
                holder: holder.to_owned(),
                limit,
                lease_secs,
            })
            .await?
        {
            Done::Ids(ids) => Ok(ids),
            _ => Err(unexpected("claim")),
        }
    }

    /// Gives back `holder`'s claims on `ids` without recording an attempt (a worker stopping
    /// before it got to them): they are due again at once.
    pub async fn release(&self, queue: Queue, holder: &str, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        self.write(Op::Release {
            queue,
            holder: holder.to_owned(),
            ids: ids.to_vec(),
        })
        .await
        .map(drop)
    }

    /// Takes back every claim and lease held by an earlier run of this instance (holders
    /// starting with `instance_prefix`, see [`crate::jobs::Holder`]): that run is known to be
    /// dead, because only one process holds the instance's lock. Returns how many were freed.
    pub async fn take_back(&self, instance_prefix: &str) -> Result<u64, StoreError> {
        match self
            .write(Op::TakeBack {
                prefix: instance_prefix.to_owned(),
            })
            .await?
        {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("take-back")),
        }
    }

    /// When the next row of `queue` becomes claimable (due, and no lease on it), if any.
    pub async fn next_due(&self, queue: Queue) -> Result<Option<i64>, StoreError> {
        self.backend().next_due(queue).await
    }

    /// Takes or renews the lease `name` for `holder` until `secs` from now. True: `holder`
    /// holds it; false: someone else does, and their lease has not run out.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        secs: i64,
    ) -> Result<bool, StoreError> {
        match self
            .write(Op::HoldLease {
                name: name.to_owned(),
                holder: holder.to_owned(),
                secs,
            })
            .await?
        {
            Done::Held(held) => Ok(held),
            _ => Err(unexpected("hold-lease")),
        }
    }

    /// Gives up the lease `name` if `holder` holds it, so another can take it at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.write(Op::ReleaseLease {
            name: name.to_owned(),
            holder: holder.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Who holds the lease `name` now, if anyone does and it has not run out.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lease(name).await?.map(|(holder, _)| holder))
    }

    /// Who holds the lease `name` now and until when (the last second it holds).
    pub async fn lease(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        self.backend().lease_holder(name, self.clock().now()).await
    }
}

/// A queue's table: its name, which rows wait, and their order. Static text only: the SQL
/// built from it has no value spliced in.
pub(crate) struct Table {
    pub name: &'static str,
    pub waiting: &'static str,
    /// The second sort key after `next_attempt_at`.
    pub then: &'static str,
}

pub(crate) fn table(queue: Queue) -> Table {
    match queue {
        Queue::Notifications => Table {
            name: "outbox",
            waiting: "status IN ('queued', 'deferred')",
            then: "seq",
        },
        Queue::WebhookDeliveries => Table {
            name: "webhook_deliveries",
            waiting: "status = 'pending'",
            then: "id",
        },
        Queue::TextMessages => Table {
            name: "sms_outbox",
            waiting: "status = 'queued'",
            then: "id",
        },
        Queue::Scheduled => Table {
            name: "scheduled_jobs",
            waiting: "status = 'queued'",
            then: "id",
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::Queue;
    use crate::domain::schedule::JobKind;
    use crate::store::scheduled::{JobOutcome, ScheduledJob};
    use crate::store::testing::{clinic_thread, per_engine};

    /// Opens threads until the outbox holds `n` due notifications (one each, to Jane).
    async fn queue_notifications(t: &crate::store::testing::TestStore, n: usize) {
        for i in 0..n {
            clinic_thread(&t.store, &format!("Message {i}")).await;
        }
    }

    per_engine! {
        async fn two_holders_claim_disjoint_work_and_an_expired_lease_is_taken_over(t) {
            queue_notifications(&t, 5).await;
            let q = Queue::Notifications;
            let a = t.store.claim(q, "a/1", 3, 60).await.unwrap();
            let b = t.store.claim(q, "b/1", 10, 60).await.unwrap();
            assert_eq!(a.len(), 3);
            assert_eq!(b.len(), 2, "only what a does not hold");
            let (sa, sb): (HashSet<_>, HashSet<_>) = (a.iter().collect(), b.iter().collect());
            assert!(sa.is_disjoint(&sb));
            assert!(t.store.claim(q, "b/1", 10, 60).await.unwrap().is_empty());
            // Nothing is claimable until a's lease runs out; then b takes a's rows over.
            assert_eq!(t.store.next_due(q).await.unwrap(), Some(t.clock.now() + 61));
            t.clock.advance(60);
            assert!(t.store.claim(q, "b/1", 10, 60).await.unwrap().is_empty(), "60 s: still a's");
            t.clock.advance(1);
            let taken: HashSet<_> = t.store.claim(q, "b/1", 10, 60).await.unwrap().into_iter().collect();
            assert_eq!(taken, a.into_iter().chain(b).collect());
        }

        async fn a_holder_gives_back_only_its_own_claims(t) {
            queue_notifications(&t, 2).await;
            let q = Queue::Notifications;
            let a = t.store.claim(q, "a/1", 1, 60).await.unwrap();
            let b = t.store.claim(q, "b/1", 1, 60).await.unwrap();
            // b cannot give back a's claim; a can.
            t.store.release(q, "b/1", &a).await.unwrap();
            assert!(t.store.claim(q, "c/1", 10, 60).await.unwrap().is_empty());
            t.store.release(q, "a/1", &a).await.unwrap();
            assert_eq!(t.store.claim(q, "c/1", 10, 60).await.unwrap(), a);
            assert_eq!(t.store.next_due(q).await.unwrap(), Some(t.clock.now() + 61), "{b:?} still leased");
        }

        async fn a_restart_takes_back_only_its_own_instances_claims_and_leases(t) {
            queue_notifications(&t, 2).await;
            let q = Queue::Notifications;
            let mine = t.store.claim(q, "me/100-aa", 1, 600).await.unwrap();
            let theirs = t.store.claim(q, "them/200-bb", 1, 600).await.unwrap();
            assert!(t.store.hold_lease("imap-poller", "me/100-aa", 600).await.unwrap());
            assert_eq!(t.store.take_back("me/").await.unwrap(), 2, "one claim, one lease");
            assert_eq!(t.store.claim(q, "me/101-cc", 10, 60).await.unwrap(), mine);
            assert!(t.store.claim(q, "me/101-cc", 10, 60).await.unwrap().is_empty(), "{theirs:?} is theirs");
            assert_eq!(t.store.lease_holder("imap-poller").await.unwrap(), None);
        }

        async fn a_lease_has_one_holder_until_it_runs_out(t) {
            let s = &t.store;
            assert!(s.hold_lease("imap-poller", "a/1", 60).await.unwrap());
            assert!(!s.hold_lease("imap-poller", "b/1", 60).await.unwrap());
            t.clock.advance(50);
            assert!(s.hold_lease("imap-poller", "a/1", 60).await.unwrap(), "renewed");
            t.clock.advance(60);
            assert!(!s.hold_lease("imap-poller", "b/1", 60).await.unwrap(), "renewal counts from then");
            t.clock.advance(1);
            assert!(s.hold_lease("imap-poller", "b/1", 60).await.unwrap(), "a stopped renewing");
            assert!(!s.hold_lease("imap-poller", "a/1", 60).await.unwrap(), "a lost it");
            assert_eq!(s.lease_holder("imap-poller").await.unwrap().as_deref(), Some("b/1"));
            s.release_lease("imap-poller", "a/1").await.unwrap();
            assert_eq!(s.lease_holder("imap-poller").await.unwrap().as_deref(), Some("b/1"), "only the holder gives it up");
            s.release_lease("imap-poller", "b/1").await.unwrap();
            assert!(s.hold_lease("imap-poller", "a/1", 60).await.unwrap());
        }

        async fn a_scheduled_job_is_queued_once_per_key_and_queues_its_next_slot(t) {
            let s = &t.store;
            let now = t.clock.now();
            let (key, due_at) = JobKind::Housekeeping.next_after(now);
            let job = ScheduledJob { kind: JobKind::Housekeeping, key: key.clone(), due_at };
            assert!(s.schedule(job.clone()).await.unwrap());
            assert!(!s.schedule(job.clone()).await.unwrap(), "the same kind and key: the same job");
            assert!(s.claim(Queue::Scheduled, "a/1", 10, 60).await.unwrap().is_empty(), "not due yet");
            assert_eq!(s.next_due(Queue::Scheduled).await.unwrap(), Some(due_at));
            t.clock.advance(due_at - now);
            let ids = s.claim(Queue::Scheduled, "a/1", 10, 60).await.unwrap();
            let due = s.due_jobs(&ids).await.unwrap();
            assert_eq!(due.len(), 1);
            assert_eq!((due[0].kind, due[0].key.as_str()), (Some(JobKind::Housekeeping), key.as_str()));
            let (next_key, next_due) = JobKind::Housekeeping.next_after(t.clock.now());
            let next = ScheduledJob { kind: JobKind::Housekeeping, key: next_key, due_at: next_due };
            s.settle_job(ids[0], JobOutcome::Done, Some(next.clone())).await.unwrap();
            // Done stays done: settling again, or asking for the same slot, changes nothing.
            s.settle_job(ids[0], JobOutcome::Failed { error: "late".into() }, None).await.unwrap();
            assert!(!s.schedule(job).await.unwrap());
            let jobs = s.scheduled_jobs(Some(JobKind::Housekeeping)).await.unwrap();
            let statuses: Vec<_> = jobs.iter().map(|j| (j.due_at, j.status.as_str())).collect();
            assert_eq!(statuses, [(next_due, "queued"), (due_at, "done")]);
            assert_eq!(s.next_due(Queue::Scheduled).await.unwrap(), Some(next_due));
        }

        async fn a_failed_run_is_due_again_at_its_retry_time(t) {
            let s = &t.store;
            let now = t.clock.now();
            let job = ScheduledJob { kind: JobKind::Housekeeping, key: "k".into(), due_at: now };
            s.schedule(job).await.unwrap();
            let ids = s.claim(Queue::Scheduled, "a/1", 10, 600).await.unwrap();
            s.settle_job(ids[0], JobOutcome::RetryAt { at: now + 60, error: "disk".into() }, None)
                .await
                .unwrap();
            assert_eq!(s.next_due(Queue::Scheduled).await.unwrap(), Some(now + 60), "its claim released");
            let jobs = s.scheduled_jobs(None).await.unwrap();
            assert_eq!((jobs[0].attempts, jobs[0].last_error.as_deref()), (1, Some("disk")));
        }
    }
}
