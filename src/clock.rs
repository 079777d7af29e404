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
        + offset()
}

/// Seconds the clock is moved forward by: in debug builds (the test suite's), the
/// `TEST_CLOCK_OFFSET_SECS` variable, so tests can open a link "a day later" without
/// waiting a day. Release builds have no such switch: their clock is the system's.
#[cfg(debug_assertions)]
fn offset() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("TEST_CLOCK_OFFSET_SECS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

#[cfg(not(debug_assertions))]
fn offset() -> i64 {
    0
}

/// RFC 3339 in UTC (`2026-11-22T02:34:45Z`), the form every JSON output uses.
pub fn rfc3339(secs: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Today's date in UTC, `YYYY-MM-DD` (what a date of birth is checked against).
pub fn today() -> String {
    rfc3339(now())[..10].to_owned()
}

/// Seconds since the Unix epoch from RFC 3339 (`2026-12-01T00:00:00Z`, offsets allowed);
/// `None` for anything else, and for times before 1970.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    humantime::parse_rfc3339_weak(text)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats() {
        assert_eq!(parse_rfc3339("2026-11-21T02:34:45Z"), Some(1_795_228_485));
        assert_eq!(parse_rfc3339(&rfc3339(1_795_228_485)), Some(1_795_228_485));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_228_485), "2026-11-21T02:34:45Z");
    }
}
