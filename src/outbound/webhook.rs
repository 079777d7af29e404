//! The webhook sender: claims due deliveries, POSTs them signed, records what happened.
//!
//! Delivery is at-least-once, like the outbox: a delivery is marked delivered only after the
//! receiver answered 2xx; a process killed in between sends it again after restart with the
//! same `webhook-id`, which is how a receiver recognises the copy. A receiver that fails or
//! does not answer is retried on a growing schedule until `webhooks.retry_for` after the
//! event, then the delivery is marked failed. Redirects are not followed (a redirect is an
//! answer that is not 2xx): the subscription names where events go.
//!
//! Where a delivery may connect is checked when it connects, not only when the subscription
//! was made: every address a receiver's name resolves to must be public, or listed in
//! `webhooks.allow_private` (see [`Targets`]), so a name that points inside the practice's
//! network — or is made to, between two lookups — reaches nothing there. Failures are
//! recorded as a class (`connect`, `dns`, `refused-address`, `tls`, `timeout`,
//! `http-status`), never the peer's own words: an admin key must not become a way to map
//! internal hosts.

use std::time::Duration;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::domain::retry::{Backoff, Next, Retry};
use crate::domain::webhook::Targets;
use crate::jobs::Work;
use crate::store::Store;
use crate::store::queue::Queue;
use crate::store::webhooks::{AttemptOutcome, DueDelivery, WebhookAttempt};

/// Deliveries claimed per round (and sent concurrently).
const BATCH: i64 = 16;
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
        let retry = Retry {
            backoff: Backoff::Steps(SCHEDULE_SECS),
            max_attempts: None,
        };
        let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
        let last = created_at + self.retry_for_secs;
        match retry.after_failure(failures, now, Some(last), false, 0.0) {
            Next::RetryAt(at) => AttemptOutcome::RetryAt(at),
            Next::GiveUp => AttemptOutcome::GaveUp,
        }
    }
}

/// The webhook deliveries' [`Work`]: the job queue's runner ([`crate::jobs::run`]) claims due
/// deliveries, this POSTs them (a batch at once; each attempt bounded by the timeout).
pub struct WebhookSender {
    store: Store,
    client: reqwest::Client,
    /// Where deliveries may connect.
    targets: Arc<Targets>,
    policy: WebhookPolicy,
}

impl Work for WebhookSender {
    fn queue(&self) -> Queue {
        Queue::WebhookDeliveries
    }

    fn batch(&self) -> i64 {
        BATCH
    }

    fn lease_secs(&self) -> i64 {
        i64::try_from(self.policy.timeout.as_secs()).unwrap_or(60) * 2 + 30
    }

    async fn work(&mut self, ids: Vec<i64>, _shutdown: &CancellationToken) -> Vec<i64> {
        let batch = match self.store.due_webhook_deliveries(&ids).await {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "cannot load webhook deliveries; they are tried again when their claims run out");
                return Vec::new();
            }
        };
        let attempts = futures_util::future::join_all(batch.iter().map(|d| self.attempt(d))).await;
        let records = batch.iter().map(|d| d.id).zip(attempts).collect();
        if let Err(e) = self.store.record_webhook_attempts(records).await {
            error!(error = %e, "cannot record webhook attempts; they will be made again");
        }
        Vec::new()
    }
}

impl WebhookSender {
    pub fn new(
        store: Store,
        policy: WebhookPolicy,
        extra_ca: Option<&std::path::Path>,
        targets: Targets,
    ) -> Result<WebhookSender, WebhookSetupError> {
        let tls = crate::tls::client_config(extra_ca)?;
        let targets = Arc::new(targets);
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .dns_resolver(Arc::new(Guarded {
                targets: targets.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| WebhookSetupError::Client(e.to_string()))?;
        Ok(WebhookSender {
            store,
            client,
            targets,
            policy,
        })
    }

    /// One POST, and what it came to.
    async fn attempt(&self, d: &DueDelivery) -> WebhookAttempt {
        let id = crate::store::webhooks::delivery_id(d.id);
        let now = self.store.clock().now();
        let signature = d.secret.sign(&id, now, d.payload.as_bytes());
        // A URL naming an address connects without asking the resolver: checked here.
        let literal = url::Url::parse(&d.url).ok().and_then(|u| match u.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        });
        let sent = match literal {
            Some(ip) if !self.targets.may_reach(ip) => Err(Class::RefusedAddress),
            _ => self
                .client
                .post(&d.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", now.to_string())
                .header("webhook-signature", signature)
                .body(d.payload.clone())
                .send()
                .await
                .map_err(|e| Class::of(&e)),
        };
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
                Class::HttpStatus.as_str().to_owned(),
            ),
            Err(class) => (None, class.as_str().to_owned()),
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

/// What kind of failure a delivery met: a closed vocabulary, stored and shown, never the
/// receiver's or the network's own words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// The name did not resolve.
    Dns,
    /// Every address of the receiver is one webhooks may not reach.
    RefusedAddress,
    /// No connection (refused, unreachable).
    Connect,
    /// The TLS handshake failed (a certificate that does not verify, a protocol mismatch).
    Tls,
    Timeout,
    /// The receiver answered, not with 2xx (the status is recorded beside).
    HttpStatus,
    /// Anything else about the request.
    Request,
}

impl Class {
    fn as_str(self) -> &'static str {
        match self {
            Class::Dns => "dns",
            Class::RefusedAddress => "refused-address",
            Class::Connect => "connect",
            Class::Tls => "tls",
            Class::Timeout => "timeout",
            Class::HttpStatus => "http-status",
            Class::Request => "request",
        }
    }

    /// The class of a failed request, from its chain of causes.
    fn of(e: &reqwest::Error) -> Class {
        if e.is_timeout() {
            return Class::Timeout;
        }
        let refused = any_cause(e, &|c| c.is::<Refused>());
        let tls = any_cause(e, &|c| c.is::<rustls::Error>());
        let dns = any_cause(e, &|c| c.to_string().contains("dns error"));
        if refused {
            Class::RefusedAddress
        } else if tls {
            Class::Tls
        } else if dns {
            Class::Dns
        } else if e.is_connect() {
            Class::Connect
        } else {
            Class::Request
        }
    }
}

/// Whether `e` or any of its causes satisfies `test`, looking inside I/O errors too (which
/// wrap their cause without naming it as their source, often several deep).
fn any_cause(
    e: &(dyn std::error::Error + 'static),
    test: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> bool {
    if test(e) {
        return true;
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        && any_cause(inner, test)
    {
        return true;
    }
    e.source().is_some_and(|next| any_cause(next, test))
}

/// The resolver's answer when every address of a name is one webhooks may not reach.
#[derive(Debug, thiserror::Error)]
#[error("no address of this name may be reached by webhooks")]
struct Refused;

/// Resolves receivers' names and keeps only the addresses webhooks may reach, at the moment
/// of connecting (so a name re-pointed at a private address after the check reaches nothing).
struct Guarded {
    targets: Arc<Targets>,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let targets = self.targets.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| targets.may_reach(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
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
