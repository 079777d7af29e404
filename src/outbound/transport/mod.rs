//! Where composed notifications go: a spool directory or an SMTP relay.

mod smtp;
mod spool;

pub use smtp::SmtpTransport;
pub use spool::SpoolTransport;

use super::compose::Notification;
use crate::config::{Outbound, Transport as TransportKind};

/// A failed delivery, classified the way the outbox needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// A 5xx answer: retrying will not help.
    pub permanent: bool,
    /// What went wrong, for the outbox's `last_error` (a relay reply or a connection error;
    /// never message content).
    pub message: String,
}

impl DeliveryError {
    pub fn temporary(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            permanent: false,
            message: message.into(),
        }
    }
}

/// Why a transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot create the spool directory {path}: {source}")]
    Spool {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the relay password file {path}: {source}")]
    Password {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// The configured transport.
pub enum Transport {
    Spool(SpoolTransport),
    Smtp(Box<SmtpTransport>),
}

impl Transport {
    /// Builds the transport `outbound.transport` names; `hostname` is our name in EHLO.
    pub fn new(outbound: &Outbound, hostname: &str) -> Result<Transport, TransportError> {
        Ok(match outbound.transport {
            TransportKind::Spool => Transport::Spool(SpoolTransport::new(&outbound.spool_dir)?),
            TransportKind::Smtp => {
                Transport::Smtp(Box::new(SmtpTransport::new(outbound, hostname)?))
            }
        })
    }

    /// Hands one notification over; on success returns the receiving side's answer.
    pub async fn deliver(&mut self, n: &Notification) -> Result<String, DeliveryError> {
        match self {
            Transport::Spool(s) => s.deliver(n).await,
            Transport::Smtp(s) => s.deliver(n).await,
        }
    }

    /// Closes any open connection politely.
    pub async fn close(&mut self) {
        if let Transport::Smtp(s) = self {
            s.close().await;
        }
    }

    /// Called when the outbox has nothing to send for a while: drop idle connections.
    pub async fn idle(&mut self) {
        if let Transport::Smtp(s) = self {
            s.close_if_idle().await;
        }
    }
}
