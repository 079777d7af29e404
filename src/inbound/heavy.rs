//! CPU-heavy work on what strangers send — parsing MIME, converting HTML, extracting reply
//! text, sealing megabytes — runs here: on the blocking pool, at most a fixed number at once.
//!
//! On the async workers, one slow message would delay every other client's greeting; here it
//! only waits for a permit. A panic inside the work (a defect, caught) comes back as
//! [`Panicked`] instead of taking anything else down: the caller holds that one message.
//!
//! Work on small inputs (up to [`INLINE_BYTES`]) runs where it is called: every step is linear,
//! so a small message costs well under a millisecond, less than the hand-off to another thread
//! and back (measured: the hand-offs cost a typical reply ~13 % of the filing rate).

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Inputs up to this size are handled on the calling thread (see the module comment).
pub const INLINE_BYTES: usize = 64 * 1024;

/// The work panicked (or was cancelled at shutdown); nothing it was doing happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("processing failed (a defect was caught; see the panic's location in the log)")]
pub struct Panicked;

/// A bounded share of the blocking pool; cheap to clone.
#[derive(Clone)]
pub struct Heavy {
    permits: Arc<Semaphore>,
}

impl Heavy {
    /// At most `max` pieces of work at once (at least one).
    pub fn new(max: usize) -> Heavy {
        Heavy {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// As many at once as the machine has cores: more would only queue inside the kernel.
    pub fn for_this_machine() -> Heavy {
        Heavy::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `work`, about an input of `size` bytes: here when it is small, else on the blocking
    /// pool once a permit is free.
    pub async fn run_for<T, F>(&self, size: usize, work: F) -> Result<T, Panicked>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        if size <= INLINE_BYTES {
            return std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .map_err(|_| Panicked);
        }
        self.run(work).await
    }

    /// Runs `work` on the blocking pool once a permit is free.
    pub async fn run<T, F>(&self, work: F) -> Result<T, Panicked>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Panicked)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| Panicked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_returned_not_propagated() {
        let heavy = Heavy::new(1);
        assert_eq!(heavy.run(|| 2 + 2).await, Ok(4));
        let r: Result<(), Panicked> = heavy.run(|| panic!("boom")).await;
        assert_eq!(r, Err(Panicked));
        // The permit came back: more work runs.
        assert_eq!(heavy.run(|| 1).await, Ok(1));
        // Small work runs here, with the same answer to a panic.
        let here = std::thread::current().id();
        assert_eq!(
            heavy
                .run_for(10, move || std::thread::current().id() == here)
                .await,
            Ok(true)
        );
        let r: Result<(), Panicked> = heavy.run_for(10, || panic!("boom")).await;
        assert_eq!(r, Err(Panicked));
        let away = heavy
            .run_for(INLINE_BYTES + 1, move || {
                std::thread::current().id() != here
            })
            .await;
        assert_eq!(away, Ok(true));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_max_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let heavy = Heavy::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (heavy, running, peak) = (heavy.clone(), running.clone(), peak.clone());
                tokio::spawn(async move {
                    heavy
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            peak.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
    }
}
