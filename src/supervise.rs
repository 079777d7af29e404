//! Keeping a long-running part of the daemon alive: a part that panics (a defect, caught) is
//! started again after a pause that grows with each failure, instead of leaving the daemon
//! running without it — an IMAP poller that died for good would leave replies unread while
//! everything looked fine.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tracing::error;

/// First pause before a restart; doubled each time, up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause before a restart.
pub const MAX_PAUSE: Duration = Duration::from_secs(300);

/// Runs `part` until it returns (which it does on `shutdown`), starting it again whenever it
/// panics. Returns how many times it was restarted.
pub async fn restart_on_panic<F, Fut>(
    name: &'static str,
    shutdown: &CancellationToken,
    first_pause: Duration,
    mut part: F,
) -> u32
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut pause = first_pause;
    let mut restarts = 0;
    loop {
        if AssertUnwindSafe(part()).catch_unwind().await.is_ok() || shutdown.is_cancelled() {
            return restarts;
        }
        error!(
            part = name,
            restart_in_secs = pause.as_secs_f64(),
            "a part of the daemon failed (a defect, caught); starting it again"
        );
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = shutdown.cancelled() => return restarts,
        }
        restarts += 1;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn a_panicking_part_is_restarted_until_it_returns() {
        let runs = AtomicU32::new(0);
        let stop = CancellationToken::new();
        let restarts = restart_on_panic("test", &stop, Duration::from_millis(5), || async {
            if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("defect");
            }
        })
        .await;
        assert_eq!(restarts, 2);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn shutdown_ends_the_pause() {
        let stop = CancellationToken::new();
        stop.cancel();
        let restarts = restart_on_panic("test", &stop, Duration::from_secs(3600), || async {
            panic!("defect")
        })
        .await;
        assert_eq!(restarts, 0);
    }
}
