//! The one loop that drains a queue: look when the next row is due (a read), claim a batch
//! with a lease when one is, hand it to the [`Work`], give back what it did not get to, and
//! otherwise sleep until the next due time, a wake-up from this process, or a short poll for
//! rows written by another (the command line, another instance).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::Holder;
use crate::store::Store;
use crate::store::queue::Queue;

/// How often an idle runner looks for rows another process wrote.
const POLL: Duration = Duration::from_millis(500);

/// One kind of background work, as the runner drives it.
pub trait Work: Send {
    /// The queue it drains.
    fn queue(&self) -> Queue;
    /// Rows claimed at once.
    fn batch(&self) -> i64;
    /// How long a claim holds: longer than a batch can take, or another holder takes it over.
    fn lease_secs(&self) -> i64;
    /// Works on claimed rows and records what became of each; returns the ids it did not get
    /// to (shutting down), which the runner gives back.
    fn work(
        &mut self,
        ids: Vec<i64>,
        shutdown: &CancellationToken,
    ) -> impl Future<Output = Vec<i64>> + Send;
    /// Called before the runner sleeps (a transport closes an idle connection).
    fn idle(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Called once, when the runner stops.
    fn close(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Drains `work`'s queue until `shutdown`; the batch in hand is finished first. `wake` is
/// notified by this process when it queues rows.
pub async fn run<W: Work>(
    mut work: W,
    store: Store,
    holder: Holder,
    wake: Option<Arc<Notify>>,
    shutdown: CancellationToken,
) {
    let queue = work.queue();
    let clock = store.clock().clone();
    let never = Arc::new(Notify::new());
    let wake = wake.unwrap_or(never);
    while !shutdown.is_cancelled() {
        let mut due = match store.next_due(queue).await {
            Ok(due) => due,
            Err(e) => {
                error!(queue = queue.name(), error = %e, "cannot look for due work");
                None
            }
        };
        if due.is_some_and(|at| at <= clock.now()) {
            match store
                .claim(queue, holder.id(), work.batch(), work.lease_secs())
                .await
            {
                Ok(ids) if !ids.is_empty() => {
                    let left = work.work(ids, &shutdown).await;
                    if let Err(e) = store.release(queue, holder.id(), &left).await {
                        error!(queue = queue.name(), error = %e, "cannot give back claimed work; it is taken over when the claims run out");
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => error!(queue = queue.name(), error = %e, "cannot claim due work"),
            }
            // Due, yet nothing to claim (another process took it first, or the claim
            // failed): look again after the poll, not at once.
            due = None;
        }
        work.idle().await;
        let until_due = async {
            match due {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = wake.notified() => {}
            _ = until_due => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
    work.close().await;
}
