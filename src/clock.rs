//! Wall-clock time as whole seconds since the Unix epoch.
//!
//! Everything Sealpost stores or signs carries seconds, not a richer type: the same integer goes
//! into SQLite, PostgreSQL and reply tokens, and converts to RFC 3339 only at the edges.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC (`2026-11-22T02:34:45Z`), the form every JSON output uses.
pub fn rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_228_485), "2026-11-21T02:34:45Z");
    }
}
