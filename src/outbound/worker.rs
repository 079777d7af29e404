//! The outbox worker: claims due notifications, composes them, hands them to the transport and
//! records what happened.
//!
//! Delivery is at-least-once. A notification is marked `sent` only after the relay (or spool)
//! accepted it; a process killed between those two moments sends it again after restart, with
//! the same Message-ID (fixed in the outbox before the first attempt), so the copy is
//! recognisable as one. Temporary failures are retried with exponential backoff and jitter;
//! permanent ones (5xx) and notifications that ran out of attempts are marked `failed`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::compose::{Composer, mode_of};
use super::transport::Transport;
use crate::clock;
use crate::domain::NotificationId;
use crate::store::Store;

/// How long a claim holds before another worker may take the row.
const LEASE_SECS: i64 = 300;
/// Rows claimed per round.
const BATCH: i64 = 32;
/// How often an idle worker looks for rows written by other processes (the CLI).
const POLL: Duration = Duration::from_millis(500);
/// Longest delay between two attempts.
const MAX_BACKOFF_SECS: u64 = 6 * 3600;

/// Retry policy of the outbox.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base_secs: u64,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Delay before attempt `attempt + 1`, after `attempt` failures: base·2^(attempt-1), capped,
    /// times a random factor in [0.75, 1.25) so a relay outage does not end in a stampede.
    pub fn backoff_secs(&self, attempt: u32) -> u64 {
        let exp = self
            .base_secs
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(30))
            .min(MAX_BACKOFF_SECS);
        let r = u32::from_be_bytes(crate::crypto::random_bytes::<4>()) as f64 / u32::MAX as f64;
        ((exp as f64) * (0.75 + 0.5 * r)).round().max(1.0) as u64
    }
}

/// The worker; [`Worker::run`] drives it until shutdown.
pub struct Worker {
    store: Store,
    composer: Composer,
    transport: Transport,
    policy: RetryPolicy,
    owner: String,
    wake: Arc<Notify>,
}

impl Worker {
    pub fn new(
        store: Store,
        composer: Composer,
        transport: Transport,
        policy: RetryPolicy,
        wake: Arc<Notify>,
    ) -> Worker {
        let tag = u32::from_be_bytes(crate::crypto::random_bytes::<4>());
        Worker {
            store,
            composer,
            transport,
            policy,
            owner: format!("pid{}-{tag:08x}", std::process::id()),
            wake,
        }
    }

    /// This worker's claim owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Delivers until `shutdown` is cancelled; the delivery in hand is finished first.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let batch = match self
                .store
                .claim_due(&self.owner, clock::now(), BATCH, LEASE_SECS)
                .await
            {
                Ok(b) => b,
                Err(e) => {
                    error!(error = %e, "cannot claim notifications from the outbox");
                    Vec::new()
                }
            };
            if batch.is_empty() {
                self.transport.idle().await;
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = self.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            for (i, id) in batch.iter().enumerate() {
                if shutdown.is_cancelled() {
                    for rest in &batch[i..] {
                        let _ = self.store.unclaim(*rest).await;
                    }
                    break;
                }
                self.deliver_one(*id).await;
            }
        }
        self.transport.close().await;
    }

    async fn deliver_one(&mut self, id: NotificationId) {
        let d = match self.store.delivery(id).await {
            Ok(d) => d,
            Err(e) => {
                error!(notification = %id, error = %e, "cannot load notification");
                let next = clock::now() + self.policy.backoff_secs(1) as i64;
                let _ = self
                    .store
                    .mark_deferred(id, "internal error loading the notification", next)
                    .await;
                return;
            }
        };
        let message_id = match self
            .store
            .fix_message_id(id, &self.composer.new_message_id(&d))
            .await
        {
            Ok(m) => m,
            Err(e) => {
                error!(notification = %id, error = %e, "cannot record the Message-ID");
                return;
            }
        };
        let n = self.composer.compose(&d, &message_id, clock::now());
        let attempt = u32::try_from(d.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let mode = mode_of(&d);
        let domain = d.recipient.address.domain().to_owned();
        let result = self.transport.deliver(&n).await;
        let now = clock::now();
        let recorded = match result {
            Ok(reply) => {
                info!(notification = %id, thread = %d.thread_id, %mode, recipient_domain = %domain, attempt, "notification sent");
                self.store.mark_sent(id, &reply, now).await
            }
            Err(e) if e.permanent => {
                warn!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, error = %e, "notification failed permanently");
                self.store.mark_failed(id, &e.message, now).await
            }
            Err(e) if attempt >= self.policy.max_attempts => {
                warn!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, error = %e, "notification failed: no attempts left");
                self.store
                    .mark_failed(
                        id,
                        &format!("{} (gave up after {attempt} attempts)", e.message),
                        now,
                    )
                    .await
            }
            Err(e) => {
                let delay = self.policy.backoff_secs(attempt);
                info!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, retry_in_secs = delay, error = %e, "notification deferred");
                self.store
                    .mark_deferred(id, &e.message, now + delay as i64)
                    .await
            }
        };
        if let Err(e) = recorded {
            // The claim expires and the notification is tried again: at-least-once.
            error!(notification = %id, error = %e, "cannot record the delivery outcome");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        let p = RetryPolicy {
            base_secs: 60,
            max_attempts: 10,
        };
        for attempt in 1..=8u32 {
            let nominal = (60u64 << (attempt - 1)).min(MAX_BACKOFF_SECS) as f64;
            for _ in 0..50 {
                let d = p.backoff_secs(attempt) as f64;
                assert!(
                    d >= nominal * 0.75 - 1.0 && d <= nominal * 1.25 + 1.0,
                    "{attempt}: {d}"
                );
            }
        }
        assert!(p.backoff_secs(40) as f64 <= MAX_BACKOFF_SECS as f64 * 1.25 + 1.0);
    }
}
