//! The `[held]` section: how much mail may wait in the held queue (see
//! [`crate::domain::held`]).

use serde::{Deserialize, Serialize};

use super::{Settings, de};
use crate::domain::held::Limits;

/// Held messages waiting for a decision, at most: from one client address, from one sender
/// domain, for one reply address, and in all (messages and bytes). Over a quota, the SMTP door
/// answers `452` (try again later) and the IMAP door leaves the message in the mailbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    #[serde(deserialize_with = "de::number")]
    pub max_per_client: u64,
    #[serde(deserialize_with = "de::number")]
    pub max_per_sender_domain: u64,
    #[serde(deserialize_with = "de::number")]
    pub max_per_reply_address: u64,
    #[serde(deserialize_with = "de::number")]
    pub max_total: u64,
    #[serde(deserialize_with = "de::number")]
    pub max_total_bytes: u64,
}

impl Default for Held {
    fn default() -> Held {
        let l = Limits::default();
        Held {
            max_per_client: l.per_client,
            max_per_sender_domain: l.per_sender_domain,
            max_per_reply_address: l.per_reply_address,
            max_total: l.total,
            max_total_bytes: l.total_bytes,
        }
    }
}

impl Held {
    /// The quotas, as the rule reads them.
    pub fn limits(&self) -> Limits {
        Limits {
            per_client: self.max_per_client,
            per_sender_domain: self.max_per_sender_domain,
            per_reply_address: self.max_per_reply_address,
            total: self.max_total,
            total_bytes: self.max_total_bytes,
        }
    }
}

impl Settings {
    pub(super) fn validate_held(&self) -> Result<(), (&'static str, String)> {
        let h = &self.held;
        for (key, value) in [
            ("held.max_per_client", h.max_per_client),
            ("held.max_per_sender_domain", h.max_per_sender_domain),
            ("held.max_per_reply_address", h.max_per_reply_address),
            ("held.max_total", h.max_total),
        ] {
            if !(1..=10_000_000).contains(&value) {
                return Err((key, "expected 1 to 10000000".into()));
            }
        }
        if h.max_total_bytes < 1 << 20 {
            return Err((
                "held.max_total_bytes",
                "expected at least 1048576 (1 MiB)".into(),
            ));
        }
        Ok(())
    }
}
