//! What the daemon counts, for Prometheus (`GET /metrics` on the API listener).
//!
//! One process-wide set of metric families: the parts that count (the SMTP door, the pipeline,
//! the outbox worker, the webhook sender, the IMAP poller, the API, the store's writer) reach
//! it through [`metrics()`] rather than having a handle threaded through every constructor.
//! Labels are closed vocabularies (doors, outcome words, reply codes, route templates), never
//! addresses, ids or anything a sender chose, so the number of series stays bounded and no
//! personal data reaches a monitoring system. Gauges of what is stored (the outbox by status,
//! held mail, pending webhook deliveries) are read from the database when scraped.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label set: names and values from closed vocabularies.
pub type Labels = Vec<(&'static str, String)>;

type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Seconds, from a millisecond to about half a minute: a commit, an API request.
fn fast() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Seconds, from a tenth of a second to about a day: a notification from queued to sent.
fn slow() -> Histogram {
    Histogram::new(exponential_buckets(0.1, 3.0, 14))
}

/// Every metric family.
pub struct Metrics {
    registry: Registry,
    /// Inbound messages decided, by door, outcome and reason.
    pub inbound: Family<Labels, Counter>,
    /// SMTP sessions accepted (and turned away at connect), by result.
    pub smtp_sessions: Family<Labels, Counter>,
    /// HTTP connections of the web view and the API, by door and result (accepted, refused
    /// at connect, evicted to make room, cut off for a late head or a slow body).
    pub http_connections: Family<Labels, Counter>,
    /// SMTP replies that refused something, by code.
    pub smtp_refusals: Family<Labels, Counter>,
    /// Notification delivery attempts, by result (sent, deferred, failed, fallback).
    pub outbox_attempts: Family<Labels, Counter>,
    /// Notifications in the outbox, by status (set when scraped).
    pub outbox: Family<Labels, Gauge>,
    /// From queued to accepted by the relay (or spool).
    pub delivery_latency: Histograms,
    /// The IMAP poller's state: 1 for the state it is in, 0 for the others.
    pub imap_state: Family<Labels, Gauge>,
    /// IMAP polls, by result.
    pub imap_polls: Family<Labels, Counter>,
    /// Webhook delivery attempts, by result (delivered, retry, failed).
    pub webhook_attempts: Family<Labels, Counter>,
    /// Attempts to send a code of the web view's 24-hour rule, by result (sent, retry,
    /// failed).
    pub sms_attempts: Family<Labels, Counter>,
    /// Runs of scheduled jobs, by kind and result (done, retry, failed).
    pub scheduled_jobs: Family<Labels, Counter>,
    /// Webhook deliveries stored, by status (set when scraped).
    pub webhook_deliveries: Family<Labels, Gauge>,
    /// Held messages awaiting a decision (set when scraped).
    pub held: Gauge,
    /// Messages refused (for now) because a quota of the held queue was full, by quota.
    pub held_refused: Family<Labels, Counter>,
    /// API requests, by route template, method and status.
    pub api_requests: Family<Labels, Counter>,
    /// API request durations, by route template and method.
    pub api_latency: Histograms,
    /// How long one group commit of the store's writer takes.
    pub store_commit: Histograms,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sealpost");
        let m = Metrics {
            inbound: Family::default(),
            smtp_sessions: Family::default(),
            smtp_refusals: Family::default(),
            http_connections: Family::default(),
            outbox_attempts: Family::default(),
            outbox: Family::default(),
            delivery_latency: Family::new_with_constructor(slow),
            imap_state: Family::default(),
            imap_polls: Family::default(),
            webhook_attempts: Family::default(),
            sms_attempts: Family::default(),
            scheduled_jobs: Family::default(),
            webhook_deliveries: Family::default(),
            held: Gauge::default(),
            held_refused: Family::default(),
            api_requests: Family::default(),
            api_latency: Family::new_with_constructor(fast),
            store_commit: Family::new_with_constructor(fast),
            registry: Registry::default(),
        };
        m.register_inbound(&mut registry);
        m.register_work(&mut registry);
        Metrics { registry, ..m }
    }

    /// The doors: what arrives by SMTP, HTTP and IMAP, and what is held.
    fn register_inbound(&self, registry: &mut Registry) {
        registry.register(
            "inbound_messages",
            "Inbound messages decided, by door, outcome and reason",
            self.inbound.clone(),
        );
        registry.register(
            "smtp_sessions",
            "SMTP connections, by result (accepted, or refused at connect)",
            self.smtp_sessions.clone(),
        );
        registry.register(
            "http_connections",
            "HTTP connections of the web view and the API, by door and result",
            self.http_connections.clone(),
        );
        registry.register(
            "smtp_refusals",
            "SMTP replies that refused a command or a message, by reply code",
            self.smtp_refusals.clone(),
        );
        registry.register(
            "imap_state",
            "The IMAP poller's state (1 for the current one)",
            self.imap_state.clone(),
        );
        registry.register(
            "imap_polls",
            "IMAP polls, by result",
            self.imap_polls.clone(),
        );
        registry.register(
            "held_messages",
            "Held messages awaiting a decision",
            self.held.clone(),
        );
        registry.register(
            "held_refused",
            "Messages refused for now because a quota of the held queue was full, by quota",
            self.held_refused.clone(),
        );
    }

    /// The work behind them: notifications, webhooks, codes, jobs, the API and the store.
    fn register_work(&self, registry: &mut Registry) {
        registry.register(
            "outbox_attempts",
            "Notification delivery attempts, by result",
            self.outbox_attempts.clone(),
        );
        registry.register(
            "outbox_notifications",
            "Notifications in the outbox, by status",
            self.outbox.clone(),
        );
        registry.register(
            "notification_delivery_seconds",
            "Time from a notification being queued to the relay accepting it",
            self.delivery_latency.clone(),
        );
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by result",
            self.webhook_attempts.clone(),
        );
        registry.register(
            "scheduled_jobs",
            "Runs of scheduled jobs, by kind and result",
            self.scheduled_jobs.clone(),
        );
        registry.register(
            "sms_attempts",
            "Attempts to send a sign-in code (SMS or email), by result",
            self.sms_attempts.clone(),
        );
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries stored, by status",
            self.webhook_deliveries.clone(),
        );
        registry.register(
            "api_requests",
            "API requests, by route, method and status",
            self.api_requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "API request durations, by route and method",
            self.api_latency.clone(),
        );
        registry.register(
            "store_commit_duration_seconds",
            "Duration of one group commit of the store's writer",
            self.store_commit.clone(),
        );
    }

    /// The text exposition format (OpenMetrics).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            // Encoding into a String cannot fail; say so rather than serve half a page.
            out.clear();
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// The daemon's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// A label set from pairs.
pub fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Counts one in `family` under `pairs`.
pub fn count<const N: usize>(family: &Family<Labels, Counter>, pairs: [(&'static str, &str); N]) {
    family.get_or_create(&labels(pairs)).inc();
}

/// Records a duration in a histogram family under `pairs`.
pub fn observe<const N: usize>(
    family: &Histograms,
    pairs: [(&'static str, &str); N],
    took: Duration,
) {
    family
        .get_or_create(&labels(pairs))
        .observe(took.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_counted() {
        let m = Metrics::new();
        count(
            &m.inbound,
            [("door", "smtp"), ("outcome", "filed"), ("reason", "")],
        );
        observe(&m.store_commit, [], Duration::from_millis(3));
        let text = m.render();
        assert!(
            text.contains(
                "sealpost_inbound_messages_total{door=\"smtp\",outcome=\"filed\",reason=\"\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("sealpost_store_commit_duration_seconds_count 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
