//! Time, as a value handed to every part that reads it.
//!
//! Everything Sealpost stores or signs carries whole seconds since the Unix epoch, not a
//! richer type: the same integer goes into SQLite, PostgreSQL and reply tokens, and converts to
//! RFC 3339 only at the edges.
//!
//! Nothing reads the system clock behind a part's back: the daemon makes one [`Clock`] and
//! hands it to the store (whose writer stamps every row with it), the pipeline, the web view,
//! the API and the background senders. A test builds the daemon in-process with an
//! [`adjustable`](Clock::adjustable) clock and moves it forward — a link a day old, a lock
//! that runs out, a retry that falls due — without sleeping and without a restart. Release
//! builds have no way to move it: there it is the system's clock and nothing else.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time as Sealpost sees it. Cheap to clone; clones share one adjustment.
#[derive(Clone, Default)]
pub struct Clock {
    /// Present only on an adjustable clock (test builds).
    shift: Option<Arc<Shift>>,
}

#[derive(Default)]
struct Shift {
    /// A frozen clock's reading before any move; `None`: the system's clock moves it.
    frozen: Option<i64>,
    secs: std::sync::atomic::AtomicI64,
    /// Told whenever the clock is moved, so waiters recompute their deadline.
    moved: tokio::sync::Notify,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.shift {
            None => f.write_str("Clock(system)"),
            Some(s) => write!(
                f,
                "Clock(system + {}s)",
                s.secs.load(std::sync::atomic::Ordering::Relaxed)
            ),
        }
    }
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock { shift: None }
    }

    /// Seconds since the Unix epoch, now.
    pub fn now(&self) -> i64 {
        match self.shift.as_ref().and_then(|s| s.frozen) {
            Some(at) => at + self.shift_secs(),
            None => system_secs() + self.shift_secs(),
        }
    }

    /// Today's date in UTC, `YYYY-MM-DD` (what a date of birth is checked against).
    pub fn today(&self) -> String {
        rfc3339(self.now())[..10].to_owned()
    }

    fn shift_secs(&self) -> i64 {
        self.shift
            .as_ref()
            .map_or(0, |s| s.secs.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Waits until this clock reads `at` or later. On an adjustable clock a move forward ends
    /// the wait at once when it passes `at`.
    pub async fn sleep_until(&self, at: i64) {
        let Some(shift) = &self.shift else {
            let left = at - self.now();
            if left > 0 {
                tokio::time::sleep(Duration::from_secs(left as u64)).await;
            }
            return;
        };
        loop {
            // Listening before reading the time: a move between the two is not missed.
            let moved = shift.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            let left = at - self.now();
            if left <= 0 {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(left as u64)) => {}
                _ = moved => {}
            }
        }
    }

    /// Completes when the clock is moved (never, on the system's clock): for a loop that
    /// sleeps a fixed interval and must look again when time jumps.
    pub async fn moved(&self) {
        match &self.shift {
            None => std::future::pending().await,
            Some(s) => s.moved.notified().await,
        }
    }
}

/// Test builds only: a clock that a test moves forward.
#[cfg(debug_assertions)]
impl Clock {
    /// The system's clock, moved by [`advance`](Clock::advance) calls from then on.
    pub fn adjustable() -> Clock {
        Clock {
            shift: Some(Arc::default()),
        }
    }

    /// A clock that reads the system's time now and stays there until moved: for tests that
    /// pin a time limit to the second.
    pub fn frozen() -> Clock {
        Clock {
            shift: Some(Arc::new(Shift {
                frozen: Some(system_secs()),
                ..Shift::default()
            })),
        }
    }

    /// Moves an adjustable clock forward by `secs` and wakes everything waiting on it.
    ///
    /// # Panics
    /// On the system's clock: a test that thinks it moves time and does not would prove nothing.
    pub fn advance(&self, secs: i64) {
        let s = self
            .shift
            .as_ref()
            .expect("only an adjustable clock can be moved");
        s.secs.fetch_add(secs, std::sync::atomic::Ordering::Relaxed);
        s.moved.notify_waiters();
    }
}

fn system_secs() -> i64 {
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
        assert_eq!(Clock::system().today().len(), 10);
    }

    #[test]
    fn formats_utc_seconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_228_485), "2026-11-21T02:34:45Z");
    }

    #[tokio::test]
    async fn a_move_forward_ends_a_wait() {
        let clock = Clock::adjustable();
        let due = clock.now() + 3600;
        let waiter = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(due).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        clock.advance(3600);
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("the wait ends when the clock passes its deadline")
            .unwrap();
        assert!(clock.now() >= due);
    }

    #[tokio::test]
    async fn a_small_move_keeps_waiting() {
        let clock = Clock::adjustable();
        let due = clock.now() + 3600;
        let waiter = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(due).await }
        });
        clock.advance(60);
        // Still an hour less a minute to go: the move woke it, and it went back to sleep.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        waiter.abort();
    }
}
