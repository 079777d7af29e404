//! The SMTP door: a listener accepting connections and one [`session`] per connection.

pub mod budget;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use crate::net::slots::{Refused, Slots};
use session::Shared;

/// Accepts connections until `shutdown`, each session in its own task (tracked by `tasks` so
/// the daemon can wait for them). `slots` decides who may connect (see [`slots`]).
pub async fn listen(
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: pause rather than spin.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let slot = match slots.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                let (text, reason): (&[u8], _) = match why {
                    Refused::PerIp => (
                        b"421 4.7.0 Too many connections from your address, try again later\r\n",
                        "per-address",
                    ),
                    Refused::Full => (
                        b"421 4.3.2 Too many connections, try again later\r\n",
                        "full",
                    ),
                };
                info!(%peer, reason, "connection refused: over the connection limit");
                crate::metrics::count(
                    &crate::metrics::metrics().smtp_sessions,
                    [("result", reason)],
                );
                tasks.spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(2), stream.write_all(text)).await;
                });
                continue;
            }
        };
        crate::metrics::count(
            &crate::metrics::metrics().smtp_sessions,
            [("result", "accepted")],
        );
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(
            session::serve(stream, peer.ip(), shared, shutdown, slot)
                .instrument(info_span!("smtp", %peer)),
        );
    }
    info!("SMTP listener stopped accepting connections");
}
