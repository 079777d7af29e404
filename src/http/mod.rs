//! Sealpost's HTTP side: the API for the practice's systems (`api`) with its metrics
//! (`metrics`), and the recipients' secure web view (`web`). API errors are problem details
//! (`problem`).

pub mod api;
pub mod metrics;
pub mod problem;
pub mod rate_limit;
pub mod tls_listener;
pub mod web;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The address a connection came from, for handlers that ask (`ConnectInfo<Peer>`), over
/// plain TCP or TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TcpListener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, TcpListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

impl
    axum::extract::connect_info::Connected<
        axum::serve::IncomingStream<'_, tls_listener::TlsListener>,
    > for Peer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, tls_listener::TlsListener>) -> Peer {
        Peer(*stream.remote_addr())
    }
}

/// Serves `router` on `listener` (over TLS with `tls`) until `stop` is cancelled; requests in
/// flight finish.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    router: axum::Router,
    stop: CancellationToken,
) {
    // Handlers may ask for the client's address (rate limits per address).
    let service = router.into_make_service_with_connect_info::<Peer>();
    let result = match tls {
        Some(config) => match tls_listener::TlsListener::new(listener, config) {
            Ok(listener) => {
                axum::serve(listener, service)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await
            }
            Err(e) => Err(e),
        },
        None => {
            axum::serve(listener, service)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
    };
    if let Err(e) = result {
        tracing::error!(error = %e, listener = name, "an HTTP listener failed");
    }
}
