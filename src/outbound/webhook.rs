//! The webhook sender: claims due deliveries, POSTs them signed, records what happened.
//!
//! Delivery is at-least-once, like the outbox: a delivery is marked delivered only after the
//! receiver answered 2xx; a process killed in between sends it again after restart with the
//! same `webhook-id`, which is how a receiver recognises the copy. A receiver that fails or
//! does not answer is retried on a growing schedule until `webhooks.retry_for` after the
//! event, then the delivery is marked failed. Redirects are not followed (a redirect is an
//! answer that is not 2xx): the subscription names where events go.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::store::Store;
use crate::store::webhooks::{AttemptOutcome, DueDelivery, WebhookAttempt};

/// Deliveries claimed per round (and sent concurrently).
const BATCH: i64 = 16;
/// How often an idle sender looks for due deliveries (a read, no write).
const POLL: Duration = Duration::from_millis(500);
/// Delays before the retries, after 1, 2, … failures; the last repeats until the window ends.
const SCHEDULE_SECS: &[i64] = &[5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800];

/// The `User-Agent` of every delivery.
const USER_AGENT: &str = concat!("Sealpost-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Why the sender cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What the sender needs from the configuration.
#[derive(Debug, Clone)]
pub struct WebhookPolicy {
    /// How long after its event a delivery may still be retried.
    pub retry_for_secs: i64,
    /// How long one attempt may take.
    pub timeout: Duration,
}

impl WebhookPolicy {
    /// What becomes of a delivery made at `created_at` whose attempt number `attempts` (1 for
    /// the first) just failed at `now`.
    pub fn after_failure(&self, created_at: i64, attempts: i64, now: i64) -> AttemptOutcome {
        let index = usize::try_from(attempts.saturating_sub(1)).unwrap_or(0);
        let delay = SCHEDULE_SECS[index.min(SCHEDULE_SECS.len() - 1)];
        let next = now + delay;
        if next > created_at + self.retry_for_secs {
            AttemptOutcome::GaveUp
        } else {
            AttemptOutcome::RetryAt(next)
        }
    }
}

/// The sender; [`WebhookSender::run`] drives it until shutdown.
pub struct WebhookSender {
    store: Store,
    client: reqwest::Client,
    policy: WebhookPolicy,
    owner: String,
}

impl WebhookSender {
    /// A sender whose claims are `owner`'s (the daemon's outbox worker's, so that one release
    /// at start frees what a killed predecessor held of both).
    pub fn new(
        store: Store,
        policy: WebhookPolicy,
        extra_ca: Option<&std::path::Path>,
        owner: &str,
    ) -> Result<WebhookSender, WebhookSetupError> {
        let tls = crate::tls::client_config(extra_ca)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WebhookSetupError::Client(e.to_string()))?;
        Ok(WebhookSender {
            store,
            client,
            policy,
            owner: owner.to_owned(),
        })
    }

    /// Delivers until `shutdown` is cancelled; attempts in flight are finished first (each is
    /// bounded by the timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let lease = i64::try_from(self.policy.timeout.as_secs()).unwrap_or(60) * 2 + 30;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let due = match self.store.next_webhook_due().await {
                Ok(Some(at)) => at <= self.store.clock().now(),
                Ok(None) => false,
                Err(e) => {
                    error!(error = %e, "cannot look for due webhook deliveries");
                    false
                }
            };
            let batch = if due {
                match self
                    .store
                    .claim_webhook_deliveries(&self.owner, self.store.clock().now(), BATCH, lease)
                    .await
                {
                    Ok(b) => b,
                    Err(e) => {
                        error!(error = %e, "cannot claim webhook deliveries");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(POLL) => {}
                }
                continue;
            }
            let attempts =
                futures_util::future::join_all(batch.iter().map(|d| self.attempt(d))).await;
            let records = batch.iter().map(|d| d.id).zip(attempts).collect();
            if let Err(e) = self.store.record_webhook_attempts(records).await {
                error!(error = %e, "cannot record webhook attempts; they will be made again");
            }
        }
    }

    /// One POST, and what it came to.
    async fn attempt(&self, d: &DueDelivery) -> WebhookAttempt {
        let id = crate::store::webhooks::delivery_id(d.id);
        let now = self.store.clock().now();
        let signature = d.secret.sign(&id, now, d.payload.as_bytes());
        let sent = self
            .client
            .post(&d.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", now.to_string())
            .header("webhook-signature", signature)
            .body(d.payload.clone())
            .send()
            .await;
        let attempts = d.attempts + 1;
        let (http_status, error) = match sent {
            Ok(response) if response.status().is_success() => {
                info!(
                    webhook = %d.webhook_id,
                    delivery = %id,
                    status = response.status().as_u16(),
                    attempts,
                    "webhook delivered"
                );
                crate::metrics::count(
                    &crate::metrics::metrics().webhook_attempts,
                    [("result", "delivered")],
                );
                return WebhookAttempt {
                    at: now,
                    http_status: Some(response.status().as_u16()),
                    error: None,
                    outcome: AttemptOutcome::Delivered,
                };
            }
            Ok(response) => (
                Some(response.status().as_u16()),
                format!("the receiver answered {}", response.status()),
            ),
            Err(e) => (None, describe(&e)),
        };
        let outcome = self.policy.after_failure(d.created_at, attempts, now);
        crate::metrics::count(
            &crate::metrics::metrics().webhook_attempts,
            [(
                "result",
                if outcome == AttemptOutcome::GaveUp {
                    "failed"
                } else {
                    "retry"
                },
            )],
        );
        match outcome {
            AttemptOutcome::GaveUp => warn!(
                webhook = %d.webhook_id,
                delivery = %id,
                attempts,
                reason = %error,
                "webhook delivery failed for good: the retry window is over"
            ),
            _ => warn!(
                webhook = %d.webhook_id,
                delivery = %id,
                attempts,
                reason = %error,
                "webhook delivery failed; will retry"
            ),
        }
        WebhookAttempt {
            at: now,
            http_status,
            error: Some(error),
            outcome,
        }
    }
}

/// A short reason for a failed request, without the URL (it may carry a token of the
/// receiver's in its query).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_request() {
        "request failed"
    } else {
        "failed"
    };
    // The innermost cause says what went wrong (a refused connection, an unknown issuer).
    let mut cause: &dyn Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("{kind}: {cause}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_and_stop_at_the_end_of_the_window() {
        let policy = WebhookPolicy {
            retry_for_secs: 24 * 3600,
            timeout: Duration::from_secs(10),
        };
        let created = 1_000_000;
        let mut now = created;
        let mut attempts = 0;
        let mut delays = Vec::new();
        loop {
            attempts += 1;
            match policy.after_failure(created, attempts, now) {
                AttemptOutcome::RetryAt(next) => {
                    assert!(next > now);
                    delays.push(next - now);
                    now = next;
                }
                AttemptOutcome::GaveUp => break,
                AttemptOutcome::Delivered => unreachable!(),
            }
        }
        assert!(delays.windows(2).all(|w| w[0] <= w[1]), "{delays:?}");
        assert_eq!(delays[0], 5);
        // The last retry is within the window and the next would not have been.
        assert!(now - created <= 24 * 3600);
        assert!(now - created > 24 * 3600 - 28_800, "{delays:?}");
    }
}
