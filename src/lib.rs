#![forbid(unsafe_code)]
//! Sealpost bridges secure message threads and ordinary email.
//!
//! The library holds everything the daemon and the CLI share; `main.rs` only parses the command
//! line and turns errors into exit codes. The module tree follows the architecture in
//! `PRODUCT.md`: pure rules in [`domain`], keys and envelopes in [`crypto`], the database in
//! [`store`], and process wiring in `app`.
//!
//! The HTTP side, the senders that call out over HTTP and the process wiring are behind the
//! `daemon` feature (on by default): the fuzz targets and the reply-text benchmark build the
//! mail side without them.

#[cfg(feature = "daemon")]
pub mod app;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod files;
#[cfg(feature = "daemon")]
pub mod http;
pub mod inbound;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod outbound;
pub mod store;
pub mod supervise;
pub mod tls;
