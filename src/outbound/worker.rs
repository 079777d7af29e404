//! The outbox worker: claims due notifications, composes them, hands them to the transport and
//! records what happened.
//!
//! Delivery is at-least-once. A notification is marked `sent` only after the relay (or spool)
//! accepted it; a process killed between those two moments sends it again after restart, with
//! the same Message-ID (fixed in the outbox before the first attempt), so the copy is
//! recognisable as one. Temporary failures are retried with exponential backoff and jitter;
//! permanent ones (5xx) and notifications that ran out of attempts are marked `failed`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::compose::{Composer, mode_of};
use super::transport::{Delivered, Transport};
use crate::domain::retry::{Backoff, Next, Retry, random_jitter};
use crate::domain::{Mode, NotificationId};
use crate::jobs::Work;
use crate::logging::redact_addresses;
use crate::store::queue::Queue;
use crate::store::{Attempt, Delivery, DeliveryContent, Store};

/// How long a claim holds before another worker may take the row.
const LEASE_SECS: i64 = 300;
/// Rows claimed per round.
const BATCH: i64 = 32;
/// Longest delay between two attempts.
const MAX_BACKOFF_SECS: u64 = 6 * 3600;

/// Retry policy of the outbox.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base_secs: u64,
    pub max_attempts: u32,
    /// A convenience notification that could not get TLS to the relay for this long after it
    /// was queued goes out as a secure one.
    pub tls_fallback_after_secs: u64,
}

impl RetryPolicy {
    /// The outbox's retry rule: exponential backoff from `base_secs` with jitter, capped, for
    /// `max_attempts` attempts (see [`crate::domain::retry`]).
    pub fn retry(&self) -> Retry {
        Retry {
            backoff: Backoff::Exponential {
                base_secs: self.base_secs,
                max_secs: MAX_BACKOFF_SECS,
            },
            max_attempts: Some(self.max_attempts),
        }
    }
}

/// The outbox's [`Work`]: the job queue's runner ([`crate::jobs::run`]) claims due
/// notifications, this delivers them.
pub struct Worker {
    store: Store,
    composer: Composer,
    transport: Transport,
    policy: RetryPolicy,
}

impl Work for Worker {
    fn queue(&self) -> Queue {
        Queue::Notifications
    }

    fn batch(&self) -> i64 {
        BATCH
    }

    fn lease_secs(&self) -> i64 {
        LEASE_SECS
    }

    async fn work(&mut self, ids: Vec<i64>, shutdown: &CancellationToken) -> Vec<i64> {
        let batch: Vec<NotificationId> = ids.into_iter().map(NotificationId).collect();
        self.deliver_batch(&batch, shutdown)
            .await
            .into_iter()
            .map(|n| n.0)
            .collect()
    }

    async fn idle(&mut self) {
        self.transport.idle().await;
    }

    async fn close(&mut self) {
        self.transport.close().await;
    }
}

impl Worker {
    pub fn new(
        store: Store,
        composer: Composer,
        transport: Transport,
        policy: RetryPolicy,
    ) -> Worker {
        Worker {
            store,
            composer,
            transport,
            policy,
        }
    }

    /// Delivers a claimed batch: Message-IDs fixed in one transaction, then each notification
    /// handed to the transport, then every outcome recorded in one transaction. Three commits a
    /// batch rather than three a notification. A crash between delivery and recording re-sends
    /// (at-least-once), with the same Message-ID.
    /// Returns the notifications it did not get to (shutting down).
    async fn deliver_batch(
        &mut self,
        batch: &[NotificationId],
        shutdown: &CancellationToken,
    ) -> Vec<NotificationId> {
        let mut loaded = Vec::with_capacity(batch.len());
        let mut attempts = Vec::with_capacity(batch.len());
        let results = match self.store.deliveries(batch).await {
            Ok(r) => r,
            Err(e) => {
                // Nothing was sent; the claims expire and the batch is tried again.
                error!(error = %e, "cannot load notifications; retrying the batch later");
                return Vec::new();
            }
        };
        for (id, result) in batch.iter().zip(results) {
            match result {
                // Removed after this was queued (and claimed before the removal cancelled it):
                // nothing goes out to someone no longer in the thread.
                Ok(d) if d.recipient.revoked => {
                    info!(notification = %id, thread = %d.thread_id, "notification cancelled: recipient removed");
                    attempts.push((
                        *id,
                        Attempt::Cancelled {
                            at: self.store.clock().now(),
                        },
                    ));
                }
                Ok(d) => loaded.push(d),
                Err(e) => {
                    error!(notification = %id, error = %e, "cannot load notification");
                    let now = self.store.clock().now();
                    let next = now + self.policy.retry().backoff.delay_secs(1, random_jitter());
                    attempts.push((
                        *id,
                        Attempt::Deferred {
                            error: "internal error loading the notification".into(),
                            next_attempt_at: next,
                        },
                    ));
                }
            }
        }
        let candidates: Vec<_> = loaded
            .iter()
            .map(|d| (d.id, self.composer.new_message_id(d)))
            .collect();
        let message_ids = match self.store.fix_message_ids(&candidates).await {
            Ok(m) => m,
            Err(e) => {
                // Nothing was sent; the claims expire and the batch is tried again.
                error!(error = %e, "cannot record Message-IDs; retrying the batch later");
                return Vec::new();
            }
        };
        if let Err(e) = self.store.fill_references(&mut loaded).await {
            warn!(error = %e, "cannot read earlier Message-IDs; sending without threading headers");
        }
        let mut delivered = 0;
        for (d, message_id) in loaded.iter().zip(&message_ids) {
            if shutdown.is_cancelled() {
                break;
            }
            let attempt = self.attempt(d, message_id).await;
            count_attempt(d, &attempt);
            attempts.push((d.id, attempt));
            delivered += 1;
        }
        if let Err(e) = self.store.record_attempts(&attempts).await {
            // The claims expire and these notifications are tried again: at-least-once.
            error!(error = %e, count = attempts.len(), "cannot record delivery outcomes");
        }
        loaded[delivered..].iter().map(|d| d.id).collect()
    }

    async fn attempt(&mut self, d: &Delivery, message_id: &str) -> Attempt {
        let id = d.id;
        let n = self
            .composer
            .compose(d, message_id, self.store.clock().now());
        let attempt = u32::try_from(d.attempts)
            .unwrap_or(u32::MAX)
            .saturating_add(1);
        let mode = mode_of(d);
        let domain = d.recipient.address.domain().to_owned();
        let mut result = self.transport.deliver(&n).await;
        let mut as_secure = false;
        if result.as_ref().is_err_and(|e| e.no_tls)
            && self.store.clock().now() - d.created_at >= self.policy.tls_fallback_after_secs as i64
        {
            // Content never goes in clear text; after waiting this long for TLS, the recipient
            // gets what a secure thread would send: that there is a message, and the link.
            warn!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, "no TLS to the relay for too long; sending a secure notification instead");
            let secure = Delivery {
                content: DeliveryContent::Secure,
                ..d.clone()
            };
            let n = self
                .composer
                .compose(&secure, message_id, self.store.clock().now());
            result = self.transport.deliver(&n).await;
            as_secure = true;
        }
        let now = self.store.clock().now();
        match result {
            Ok(Delivered { reply, tls }) => {
                let mode = if as_secure { Mode::Secure } else { mode };
                info!(notification = %id, thread = %d.thread_id, %mode, recipient_domain = %domain, attempt, tls = tls.as_deref().unwrap_or("-"), "notification sent");
                Attempt::Sent {
                    reply,
                    at: now,
                    tls,
                    as_secure,
                }
            }
            Err(e) if e.permanent => {
                warn!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, error = %redact_addresses(&e.message), "notification failed permanently");
                Attempt::Failed {
                    error: e.message,
                    at: now,
                }
            }
            Err(e) => {
                match self
                    .policy
                    .retry()
                    .after_failure(attempt, now, None, false, random_jitter())
                {
                    Next::GiveUp => {
                        warn!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, error = %redact_addresses(&e.message), "notification failed: no attempts left");
                        Attempt::Failed {
                            error: format!("{} (gave up after {attempt} attempts)", e.message),
                            at: now,
                        }
                    }
                    Next::RetryAt(at) => {
                        info!(notification = %id, thread = %d.thread_id, recipient_domain = %domain, attempt, retry_in_secs = at - now, error = %redact_addresses(&e.message), "notification deferred");
                        Attempt::Deferred {
                            error: e.message,
                            next_attempt_at: at,
                        }
                    }
                }
            }
        }
    }
}

/// Counts an attempt, and how long a sent notification waited since it was queued.
fn count_attempt(d: &Delivery, attempt: &Attempt) {
    let m = crate::metrics::metrics();
    let result = match attempt {
        Attempt::Sent {
            as_secure: true, ..
        } => "sent-as-secure",
        Attempt::Sent { .. } => "sent",
        Attempt::Deferred { .. } => "deferred",
        Attempt::Failed { .. } => "failed",
        Attempt::Cancelled { .. } => "cancelled",
    };
    crate::metrics::count(&m.outbox_attempts, [("result", result)]);
    if let Attempt::Sent { at, .. } = attempt {
        let waited = u64::try_from(at - d.created_at).unwrap_or(0);
        crate::metrics::observe(&m.delivery_latency, [], Duration::from_secs(waited));
    }
}
