//! The `[http]` section, and the connection budgets of the HTTP doors (`web.*`, `api.*`): what
//! a stranger may hold of the web view or the API, so that neither door can starve the other
//! or the SMTP listener.

use serde::{Deserialize, Serialize};

use super::{Settings, de};
use crate::net::descriptors;

/// Deadlines and bounds every HTTP listener applies to each connection and request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    /// A request's head (its request line and headers) must arrive within this many seconds of
    /// the connection opening, or of the previous answer on a kept-alive connection: a client
    /// that starts a request and never finishes it, or keeps an idle connection, is cut off.
    #[serde(deserialize_with = "de::number")]
    pub head_timeout_secs: u64,
    /// A request's body must arrive at this many bytes a second at least (after ten seconds'
    /// grace), or the request ends with 408.
    #[serde(deserialize_with = "de::number")]
    pub min_body_rate: u64,
    /// Requests each listener works on at once; more wait up to five seconds for a turn, then
    /// get 503 with Retry-After. This also bounds what they queue at the database.
    #[serde(deserialize_with = "de::number")]
    pub max_requests_in_flight: usize,
}

impl Default for Http {
    fn default() -> Http {
        Http {
            head_timeout_secs: 10,
            min_body_rate: 4096,
            max_requests_in_flight: 64,
        }
    }
}

impl Settings {
    pub(super) fn validate_http(&self) -> Result<(), (&'static str, String)> {
        let h = &self.http;
        if !(1..=300).contains(&h.head_timeout_secs) {
            return Err(("http.head_timeout_secs", "expected 1 to 300".into()));
        }
        if !(64..=1 << 30).contains(&h.min_body_rate) {
            return Err((
                "http.min_body_rate",
                "expected 64 to 1073741824 bytes a second".into(),
            ));
        }
        if !(1..=10_000).contains(&h.max_requests_in_flight) {
            return Err(("http.max_requests_in_flight", "expected 1 to 10000".into()));
        }
        for (key, value) in [
            ("web.max_connections", self.web.max_connections),
            (
                "web.max_connections_per_ip",
                self.web.max_connections_per_ip,
            ),
            ("api.max_connections", self.api.max_connections),
            (
                "api.max_connections_per_ip",
                self.api.max_connections_per_ip,
            ),
        ] {
            if !(1..=100_000).contains(&value) {
                return Err((key, "expected 1 to 100000".into()));
            }
        }
        Ok(())
    }

    /// The connection caps of the doors the daemon opens, in order SMTP, web view, API
    /// (0 for a door that is off).
    pub fn door_caps(&self) -> [usize; 3] {
        [
            self.smtp.max_connections,
            if self.web.enabled {
                self.web.max_connections
            } else {
                0
            },
            if self.api.enabled {
                self.api.max_connections
            } else {
                0
            },
        ]
    }

    /// What `check-config` and the daemon say about the HTTP doors' budgets.
    pub(super) fn http_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let needed = descriptors::needed(&self.door_caps());
        let (_, hard) = descriptors::limits();
        if let Some(hard) = hard.filter(|h| *h < needed) {
            out.push(format!(
                "smtp/web/api.max_connections need {needed} file descriptors with the daemon's \
                 reserve, more than this process may open ({hard}): the daemon will lower them \
                 in proportion; raise LimitNOFILE (the unit sets {}) or lower the caps",
                descriptors::UNIT_LIMIT
            ));
        } else if needed > descriptors::UNIT_LIMIT {
            out.push(format!(
                "smtp/web/api.max_connections need {needed} file descriptors with the daemon's \
                 reserve, more than the LimitNOFILE={} the unit sets: raise it in a drop-in \
                 or lower the caps",
                descriptors::UNIT_LIMIT
            ));
        }
        if self.web.enabled && self.web.tls_cert.is_none() && self.web.trusted_proxies.is_empty() {
            out.push(
                "web.trusted_proxies is empty: X-Forwarded-For is ignored, so behind a reverse \
                 proxy every patient shares the proxy's address for the rate limits; list the \
                 proxy's address (e.g. \"127.0.0.1\")"
                    .into(),
            );
        }
        out
    }
}
