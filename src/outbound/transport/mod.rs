//! Where composed notifications go: a spool directory or an SMTP relay.

mod smtp;
mod spool;

pub use smtp::SmtpTransport;
pub use spool::SpoolTransport;

use super::compose::Notification;
use crate::config::{Outbound, Transport as TransportKind};

/// A notification the receiving side accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Its answer (`250 2.0.0 queued as …`, or where the spool put it).
    pub reply: String,
    /// How the connection was protected: `TLSv1.3 TLS13_AES_256_GCM_SHA384`, or `none`;
    /// `None` when nothing went over a network (the spool).
    pub tls: Option<String>,
}

/// A failed delivery, classified the way the outbox needs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DeliveryError {
    /// A 5xx answer: retrying will not help.
    pub permanent: bool,
    /// TLS to the relay could not be established, and the notification carries content: it
    /// was not sent (see `outbound.tls_fallback_after`).
    pub no_tls: bool,
    /// What went wrong, for the outbox's `last_error` (a relay reply or a connection error;
    /// never message content).
    pub message: String,
}

impl DeliveryError {
    pub fn temporary(message: impl Into<String>) -> DeliveryError {
        DeliveryError {
            permanent: false,
            no_tls: false,
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
    pub async fn deliver(&mut self, n: &Notification) -> Result<Delivered, DeliveryError> {
        match self {
            Transport::Spool(s) => s
                .deliver(n)
                .await
                .map(|reply| Delivered { reply, tls: None }),
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
