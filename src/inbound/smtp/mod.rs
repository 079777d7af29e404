//! The SMTP door: a listener accepting connections and one [`session`] per connection.

pub mod session;

use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};

use session::Shared;

/// Accepts connections until `shutdown`, each session in its own task (tracked by `tasks` so
/// the daemon can wait for them), at most `max_connections` at once.
pub async fn listen(
    listener: TcpListener,
    shared: Arc<Shared>,
    max_connections: usize,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => break,
        };
        let (mut stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            info!(%peer, "too many connections; refusing");
            tasks.spawn(async move {
                let _ = stream
                    .write_all(b"421 4.3.2 Too many connections, try again later\r\n")
                    .await;
            });
            continue;
        };
        let shared = shared.clone();
        let shutdown = shutdown.clone();
        tasks.spawn(
            async move {
                session::serve(stream, shared, shutdown).await;
                drop(permit);
            }
            .instrument(info_span!("smtp", %peer)),
        );
    }
    info!("SMTP listener stopped accepting connections");
}
