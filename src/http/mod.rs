//! Sealpost's HTTP side: the API for the practice's systems (`api`). Errors are problem
//! details (`problem`).

pub mod api;
pub mod problem;
pub mod rate_limit;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` until `stop` is cancelled; requests in flight finish.
pub async fn serve(listener: TcpListener, router: axum::Router, stop: CancellationToken) {
    let result = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the API listener failed");
    }
}
