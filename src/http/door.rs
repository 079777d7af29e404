//! An HTTP door (the web view, the API): its own accept loop with the budgets the SMTP
//! listener has, so that a stranger who opens connections and never finishes a request cannot
//! hold the process's file descriptors, nor starve the other doors.
//!
//! - **Connections**: a table of its own ([`Slots`]): a total and a per-address cap; when it
//!   is full, an idle connection (waiting for, or part-way through, a request head) from the
//!   most crowded address makes room. A trusted proxy is not held to the per-address cap. A
//!   connection refused is closed at once, so the kernel's queue keeps moving for everyone
//!   else.
//! - **The head**: a request line and headers must arrive within `http.head_timeout_secs` of
//!   the connection opening (TLS handshake included) or of the previous answer — which also
//!   ends kept-alive connections left idle.
//! - **The body**: it must keep arriving at `http.min_body_rate` after ten seconds' grace; a
//!   body that does not fails to read, before its handler has done anything.
//! - **Requests in flight**: at most `http.max_requests_in_flight` at once; more wait up to
//!   five seconds for a turn, then get 503 with `Retry-After`. This also bounds what requests
//!   can queue at the store's writer.
//! - **TLS**: when the door terminates TLS itself, every answer carries
//!   `Strict-Transport-Security`.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::Peer;
use crate::net::proxies::TrustedProxies;
use crate::net::slots::{Refused, Slot, Slots};

/// Grace before a request body must keep up with the minimum rate.
const BODY_GRACE: Duration = Duration::from_secs(10);
/// How long a request waits for a turn when every one is taken.
const TURN_WAIT: Duration = Duration::from_secs(5);
/// What `Strict-Transport-Security` says: a year, this host only (the practice's other hosts
/// are not ours to pin).
const HSTS: &str = "max-age=31536000";

/// One HTTP door's budgets.
#[derive(Clone)]
pub struct Door {
    /// `web` or `api`: in logs and metrics.
    pub name: &'static str,
    pub slots: Arc<Slots>,
    /// Peers not held to the per-address cap (`web.trusted_proxies`).
    pub proxies: TrustedProxies,
    pub head_timeout: Duration,
    /// Bytes a second.
    pub min_body_rate: u64,
    pub max_requests_in_flight: usize,
    /// The largest body the door accepts: the deadline of a body of unknown length.
    pub max_body_bytes: usize,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// Serves `router` on `listener` until `stop` is cancelled; connections are tracked by
/// `tasks` (the daemon waits for them when draining), and each answers what it has in hand.
pub async fn serve(
    door: Door,
    listener: TcpListener,
    router: Router,
    stop: CancellationToken,
    tasks: TaskTracker,
) {
    let budget = Arc::new(RequestBudget {
        turns: Arc::new(Semaphore::new(door.max_requests_in_flight.max(1))),
        min_body_rate: door.min_body_rate.max(1),
        max_body_bytes: door.max_body_bytes as u64,
        hsts: door.tls.is_some(),
    });
    let router = router.layer(axum::middleware::from_fn_with_state(budget, within_budget));
    let tls = door.tls.clone().map(|config| {
        let mut config = (*config).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsAcceptor::from(Arc::new(config))
    });
    let door = Arc::new(door);
    let mut failing = false;
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                failing = false;
                a
            }
            Err(e) => {
                // Out of descriptors, most likely: pause rather than spin, and say so once.
                if !failing {
                    warn!(door = door.name, error = %e, "accept failed");
                    failing = true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let proxy = door.proxies.contains(peer.ip());
        let slot = match door.slots.admit_from(peer.ip(), proxy) {
            Ok(slot) => slot,
            Err(why) => {
                let result = match why {
                    Refused::PerIp => "refused-per-address",
                    Refused::Full => "refused-full",
                };
                debug!(door = door.name, %peer, result, "connection refused: over the limit");
                count(door.name, result);
                drop(stream);
                continue;
            }
        };
        count(door.name, "accepted");
        let _ = stream.set_nodelay(true);
        tasks.spawn(connection(
            door.clone(),
            tls.clone(),
            stream,
            peer,
            slot,
            router.clone(),
            stop.clone(),
        ));
    }
    info!(
        door = door.name,
        "HTTP listener stopped accepting connections"
    );
}

fn count(door: &'static str, result: &'static str) {
    crate::metrics::count(
        &crate::metrics::metrics().http_connections,
        [("door", door), ("result", result)],
    );
}

/// One connection: the TLS handshake (within the head deadline), then HTTP/1.1 until the
/// client leaves, a deadline passes, the table wants the slot back, or the daemon stops.
async fn connection(
    door: Arc<Door>,
    tls: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    router: Router,
    stop: CancellationToken,
) {
    let slot = Arc::new(slot);
    slot.idle();
    match tls {
        None => http(&door, stream, peer, slot, router, stop).await,
        Some(acceptor) => {
            let handshake = tokio::select! {
                h = tokio::time::timeout(door.head_timeout, acceptor.accept(stream)) => h,
                _ = slot.evicted() => return count(door.name, "evicted"),
                _ = stop.cancelled() => return,
            };
            match handshake {
                Ok(Ok(stream)) => http(&door, stream, peer, slot, router, stop).await,
                Ok(Err(e)) => debug!(door = door.name, %peer, error = %e, "TLS handshake failed"),
                Err(_) => count(door.name, "head-timeout"),
            }
        }
    }
}

async fn http<S>(
    door: &Door,
    stream: S,
    peer: SocketAddr,
    slot: Arc<Slot>,
    router: Router,
    stop: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let marks = slot.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(Peer(peer)));
            marks.busy();
            let (router, marks) = (router.clone(), marks.clone());
            async move {
                let response = router.oneshot(request).await;
                marks.idle();
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(door.head_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    if e.is_timeout() {
                        count(door.name, "head-timeout");
                    }
                    debug!(door = door.name, %peer, error = %e, "HTTP connection ended");
                }
                return;
            }
            // Idle by the table's rules (no request being answered): closing it loses nothing.
            _ = slot.evicted(), if !closing => return count(door.name, "evicted"),
            _ = stop.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// What every request of a door is held to.
struct RequestBudget {
    turns: Arc<Semaphore>,
    min_body_rate: u64,
    max_body_bytes: u64,
    hsts: bool,
}

/// Waits for a turn (or answers 503), puts the body on its deadline, and marks TLS answers
/// with HSTS.
async fn within_budget(
    State(budget): State<Arc<RequestBudget>>,
    request: Request,
    next: Next,
) -> Response {
    let turn = match tokio::time::timeout(TURN_WAIT, budget.turns.clone().acquire_owned()).await {
        Ok(Ok(turn)) => turn,
        _ => {
            let mut busy = (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many requests at once; please try again in a moment.\n",
            )
                .into_response();
            busy.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return busy;
        }
    };
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let deadline = body_deadline(length, budget.min_body_rate, budget.max_body_bytes);
    let request = request.map(|body| Body::new(Deadline::new(body, deadline)));
    let mut response = next.run(request).await;
    drop(turn);
    if budget.hsts {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}

/// How long a body of `length` bytes (unknown: the largest accepted) may take to arrive.
fn body_deadline(length: Option<u64>, min_rate: u64, max_bytes: u64) -> Duration {
    let bytes = length.unwrap_or(max_bytes).min(max_bytes);
    BODY_GRACE + Duration::from_secs(bytes.div_ceil(min_rate.max(1)))
}

/// A request body that fails once its deadline passes: read by a handler's extractor, it
/// ends the request with an error before the handler does anything.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Deadline {
    fn new(inner: Body, after: Duration) -> Deadline {
        Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(after)),
        }
    }
}

/// The error a body too slow to arrive ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
struct TooSlow;

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(TooSlow)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use http_body::Body as _;

    #[test]
    fn a_body_may_take_the_grace_and_its_length_at_the_minimum_rate() {
        assert_eq!(body_deadline(Some(0), 4096, 1 << 20), BODY_GRACE);
        assert_eq!(
            body_deadline(Some(40_960), 4096, 1 << 20),
            BODY_GRACE + Duration::from_secs(10)
        );
        // A body of unknown length gets the time of the largest one accepted.
        assert_eq!(
            body_deadline(None, 4096, 262_144),
            BODY_GRACE + Duration::from_secs(64)
        );
        // A declared length above the limit is refused by the limit anyway.
        assert_eq!(
            body_deadline(Some(u64::MAX), 4096, 262_144),
            BODY_GRACE + Duration::from_secs(64)
        );
    }

    #[tokio::test]
    async fn a_body_that_stalls_fails_at_its_deadline() {
        // One chunk, then nothing more, ever.
        let chunks =
            futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"first"))])
                .chain(futures_util::stream::pending());
        let mut slow = Deadline::new(Body::from_stream(chunks), Duration::from_millis(200));
        let first = std::future::poll_fn(|cx| Pin::new(&mut slow).poll_frame(cx))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "first");
        let stalled = std::future::poll_fn(|cx| Pin::new(&mut slow).poll_frame(cx))
            .await
            .unwrap();
        assert!(stalled.unwrap_err().is::<TooSlow>());
    }
}
