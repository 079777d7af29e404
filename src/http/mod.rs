//! Sealpost's HTTP side: the API for the practice's systems (`api`) with its metrics
//! (`metrics`). Errors are problem details (`problem`).

pub mod api;
pub mod metrics;
pub mod problem;
pub mod rate_limit;
pub mod tls_listener;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` is cancelled; requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    router: axum::Router,
    stop: CancellationToken,
) {
    let result = match tls {
        Some(config) => match tls_listener::TlsListener::new(listener, config) {
            Ok(listener) => {
                axum::serve(listener, router)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }
            Err(e) => Err(e),
        },
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "the API listener failed");
    }
}
