//! Singleton parts: a part that must run in one place at a time (the IMAP poller: two pollers
//! on one mailbox would race to file and move the same messages) runs only while its holder
//! holds a named lease, renewing it as it goes. A holder that stops renewing — killed, hung,
//! cut off from the database — loses the lease when it runs out, and another instance takes
//! over; one that stops cleanly gives it up at once.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Holder;
use crate::store::Store;

/// Runs `part` whenever `holder` holds the lease `name` (held for `secs`, renewed every
/// third of that), until `shutdown`. `part` gets a token that is cancelled when the lease is
/// lost, and must stop then; it is started again if the lease comes back.
pub async fn while_held<F, Fut>(
    store: &Store,
    name: &str,
    holder: &Holder,
    secs: i64,
    shutdown: &CancellationToken,
    mut part: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let clock = store.clock().clone();
    let every = (secs / 3).max(1);
    let mut waiting_logged = false;
    while !shutdown.is_cancelled() {
        let outcome = store.hold_lease(name, holder.id(), secs).await;
        let refused = matches!(outcome, Ok(false));
        match outcome {
            Ok(true) => {
                info!(lease = name, "lease taken: running");
                waiting_logged = false;
                let stop = shutdown.child_token();
                let run = part(stop.clone());
                let renew = renew(store, name, holder, secs, every, &stop);
                tokio::pin!(run, renew);
                tokio::select! {
                    _ = &mut run => {}
                    _ = &mut renew => run.await,
                }
                stop.cancel();
                if shutdown.is_cancelled() {
                    if let Err(e) = store.release_lease(name, holder.id()).await {
                        warn!(lease = name, error = %e, "cannot give up the lease; it runs out on its own");
                    }
                    break;
                }
            }
            Ok(false) => {
                if !waiting_logged {
                    info!(
                        lease = name,
                        "another instance holds the lease: standing by"
                    );
                    waiting_logged = true;
                }
            }
            Err(e) => warn!(lease = name, error = %e, "cannot take the lease; trying again"),
        }
        // Look again in a while, or as soon as the holder's lease runs out (at once if it
        // already has).
        let now = clock.now();
        let at = match store.lease(name).await {
            Ok(Some((_, until))) => (now + every).min(until + 1),
            // Refused a moment ago, free now: its holder's lease ran out in between.
            Ok(None) if refused => now,
            Ok(None) => now + every,
            // The database did not answer: try again soon, not a whole period later.
            Err(_) => now + every.min(2),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = clock.sleep_until(at) => {}
        }
    }
}

/// Renews the lease until `stop`; when it is lost (another holder took it, or it could not be
/// renewed before running out), cancels `stop` and returns.
async fn renew(
    store: &Store,
    name: &str,
    holder: &Holder,
    secs: i64,
    every: i64,
    stop: &CancellationToken,
) {
    let clock = store.clock();
    let mut held_until = clock.now() + secs;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = clock.sleep_until(clock.now() + every) => {}
        }
        match store.hold_lease(name, holder.id(), secs).await {
            Ok(true) => held_until = clock.now() + secs,
            Ok(false) => {
                warn!(lease = name, "lease lost to another instance: stopping");
                break;
            }
            Err(e) if clock.now() < held_until => {
                warn!(lease = name, error = %e, "cannot renew the lease; trying again");
            }
            Err(e) => {
                warn!(lease = name, error = %e, "the lease ran out before it could be renewed: stopping");
                break;
            }
        }
    }
    stop.cancel();
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A stand-by holder takes over as soon as the holder's lease runs out on the clock, not
    /// at its next periodic look.
    #[tokio::test]
    async fn a_standby_takes_over_when_the_lease_runs_out() {
        let t = crate::store::testing::open().await;
        let (a, b) = (Holder::ephemeral(), Holder::ephemeral());
        assert!(t.store.hold_lease("part", a.id(), 60).await.unwrap());
        let shutdown = CancellationToken::new();
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let standby = {
            let (store, b, shutdown) = (t.store.clone(), b.clone(), shutdown.clone());
            tokio::spawn(async move {
                while_held(&store, "part", &b, 60, &shutdown, |stop| {
                    let tx = started_tx.clone();
                    async move {
                        tx.send(()).unwrap();
                        stop.cancelled().await;
                    }
                })
                .await;
            })
        };
        // Standing by: its first attempt failed, and it sleeps.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(started.try_recv().is_err());
        // Time passes in steps: the stand-by looks at 20 s (still held), then wakes when the
        // lease runs out, not 20 s after its last look.
        t.clock.advance(59);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(started.try_recv().is_err(), "still a's at 59 s");
        t.clock.advance(2);
        tokio::time::timeout(Duration::from_secs(5), started.recv())
            .await
            .expect("took over at once")
            .unwrap();
        assert_eq!(
            t.store.lease_holder("part").await.unwrap().as_deref(),
            Some(b.id())
        );
        shutdown.cancel();
        standby.await.unwrap();
        assert_eq!(
            t.store.lease_holder("part").await.unwrap(),
            None,
            "given up on stop"
        );
    }
}
