//! Sealpost's HTTP side: the API for the practice's systems (`api`) with its metrics
//! (`metrics`), and the recipients' secure web view (`web`), each served by a [`door`] with
//! its own connection budget. API errors are problem details (`problem`).

pub mod api;
pub mod door;
pub mod metrics;
pub mod problem;
pub mod rate_limit;
pub mod web;

/// The address a connection came from, for handlers that ask (`ConnectInfo<Peer>`), over
/// plain TCP or TLS alike.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);
