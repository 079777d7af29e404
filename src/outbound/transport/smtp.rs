//! The SMTP transport: delivery through a relay, with STARTTLS, implicit TLS or (loopback only)
//! plain text, optional AUTH, verified certificates and explicit timeouts.
//!
//! A notification that carries content is only ever sent over TLS (or to a loopback relay
//! configured without it). With STARTTLS, a relay that does not offer it still gets the
//! content-free notifications — secure ones and notices — in clear text; one whose TLS
//! handshake or certificate fails gets nothing (that is a misconfiguration or an attack, not
//! an old relay). Each delivery records how its connection was protected.
//!
//! One connection is kept open across a burst of notifications and closed after
//! [`IDLE_CLOSE`] without use. A reused connection that turns out to be dead (the relay closed
//! it) is replaced once, transparently, before the attempt counts as failed.

use std::time::{Duration, Instant};

use mail_send::smtp::message::Message;
use mail_send::{Credentials, SmtpClient, SmtpClientBuilder};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tracing::debug;

use super::{Delivered, DeliveryError, TransportError};
use crate::config::{Outbound, SmtpTls};
use crate::outbound::compose::Notification;

/// An open connection kept longer than this is closed rather than reused.
const IDLE_CLOSE: Duration = Duration::from_secs(20);

enum Relay {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

impl Relay {
    async fn send(&mut self, m: Message<'_>) -> mail_send::Result<smtp_proto::Response<String>> {
        match self {
            Relay::Plain(c) => c.send(m).await,
            Relay::Tls(c) => c.send(m).await,
        }
    }

    async fn rset(&mut self) -> mail_send::Result<()> {
        match self {
            Relay::Plain(c) => c.rset().await,
            Relay::Tls(c) => c.rset().await,
        }
    }

    async fn quit(self) {
        let _ = match self {
            Relay::Plain(c) => c.quit().await,
            Relay::Tls(c) => c.quit().await,
        };
    }

    fn is_plain(&self) -> bool {
        matches!(self, Relay::Plain(_))
    }

    /// How the connection is protected, for the delivery's record.
    fn protection(&self) -> String {
        match self {
            Relay::Plain(_) => "none".to_owned(),
            Relay::Tls(c) => {
                let conn = c.tls_connection();
                let version = match conn.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
                    Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
                    Some(other) => format!("{other:?}"),
                    None => "TLS".to_owned(),
                };
                match conn.negotiated_cipher_suite() {
                    Some(suite) => format!("{version} {:?}", suite.suite()),
                    None => version,
                }
            }
        }
    }
}

pub struct SmtpTransport {
    builder: SmtpClientBuilder<String>,
    tls: SmtpTls,
    open: Option<(Relay, Instant)>,
}

impl SmtpTransport {
    pub fn new(o: &Outbound, hostname: &str) -> Result<SmtpTransport, TransportError> {
        let connector = TlsConnector::from(crate::tls::client_config(o.smtp_ca_file.as_deref())?);
        let mut builder =
            SmtpClientBuilder::new_with_tls_connector(o.smtp_host.clone(), o.smtp_port, connector)
                .implicit_tls(o.smtp_tls == SmtpTls::Implicit)
                .helo_host(hostname.to_owned())
                .timeout(Duration::from_secs(o.smtp_timeout_secs));
        if let (Some(user), Some(path)) = (&o.smtp_username, &o.smtp_password_file) {
            let password =
                std::fs::read_to_string(path).map_err(|source| TransportError::Password {
                    path: path.clone(),
                    source,
                })?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(SmtpTransport {
            builder,
            tls: o.smtp_tls,
            open: None,
        })
    }

    /// Opens a connection fit for a notification that does (or does not) carry content.
    async fn connect(&self, content: bool) -> Result<Relay, DeliveryError> {
        // mail-send writes a message and its final "." in separate writes; without TCP_NODELAY
        // Nagle's algorithm holds that last write for the peer's delayed ACK (40 ms a message).
        let plain = || async {
            self.builder.connect_plain().await.map(|c| {
                let _ = c.stream.set_nodelay(true);
                Relay::Plain(c)
            })
        };
        let result = match self.tls {
            SmtpTls::None => plain().await,
            SmtpTls::Starttls | SmtpTls::Implicit => {
                match self.builder.connect().await.map(|c| {
                    let _ = c.stream.get_ref().0.set_nodelay(true);
                    Relay::Tls(Box::new(c))
                }) {
                    Err(mail_send::Error::MissingStartTls) if !content => {
                        debug!(
                            "the relay offers no STARTTLS; a content-free notification goes in clear text"
                        );
                        plain().await
                    }
                    other => other,
                }
            }
        };
        result.map_err(|e| {
            let no_tls = content && is_tls_failure(&e);
            let mut e = classify(e);
            // A refused login or a missing STARTTLS is a configuration problem the admin can
            // fix; keep the notification queued rather than failing it.
            e.permanent = false;
            e.no_tls = no_tls;
            e.message = if no_tls {
                format!(
                    "no TLS to the relay ({}); a notification with content is never sent in \
                     clear text",
                    e.message
                )
            } else {
                format!("connecting to the relay: {}", e.message)
            };
            e
        })
    }

    pub async fn deliver(&mut self, n: &Notification) -> Result<Delivered, DeliveryError> {
        let content = n.carries_content;
        let reused = match self.open.take() {
            // A clear-text connection opened for content-free mail is no place for content.
            Some((relay, last))
                if last.elapsed() < IDLE_CLOSE
                    && !(content && relay.is_plain() && self.tls != SmtpTls::None) =>
            {
                Some(relay)
            }
            Some((relay, _)) => {
                relay.quit().await;
                None
            }
            None => None,
        };
        let was_reused = reused.is_some();
        let mut relay = match reused {
            Some(r) => r,
            None => self.connect(content).await?,
        };
        let message = || {
            Message::new(
                n.envelope_from.as_str(),
                [n.recipient.as_str()],
                n.bytes.as_slice(),
            )
        };
        let mut result = relay.send(message()).await;
        if was_reused && result.as_ref().is_err_and(connection_lost) {
            debug!("reused relay connection was closed; reconnecting");
            relay = self.connect(content).await?;
            result = relay.send(message()).await;
        }
        match result {
            Ok(reply) => {
                let tls = Some(relay.protection());
                self.open = Some((relay, Instant::now()));
                Ok(Delivered {
                    reply: wire_form(&reply),
                    tls,
                })
            }
            Err(e) => {
                let lost = connection_lost(&e);
                let err = classify(e);
                // After a refused recipient the session is still good once reset.
                if !lost && relay.rset().await.is_ok() {
                    self.open = Some((relay, Instant::now()));
                }
                Err(err)
            }
        }
    }

    pub async fn close(&mut self) {
        if let Some((relay, _)) = self.open.take() {
            relay.quit().await;
        }
    }

    pub async fn close_if_idle(&mut self) {
        if self
            .open
            .as_ref()
            .is_some_and(|(_, t)| t.elapsed() >= IDLE_CLOSE)
        {
            self.close().await;
        }
    }
}

fn connection_lost(e: &mail_send::Error) -> bool {
    matches!(
        e,
        mail_send::Error::Io(_) | mail_send::Error::UnparseableReply | mail_send::Error::Timeout
    )
}

/// TLS could not be had: the relay does not offer it, refused it, or its certificate did
/// not verify.
fn is_tls_failure(e: &mail_send::Error) -> bool {
    matches!(
        e,
        mail_send::Error::MissingStartTls
            | mail_send::Error::Tls(_)
            | mail_send::Error::InvalidTLSName
            | mail_send::Error::UnexpectedReply(_)
    )
}

fn classify(e: mail_send::Error) -> DeliveryError {
    match e {
        mail_send::Error::UnexpectedReply(r) => DeliveryError {
            permanent: r.code >= 500,
            no_tls: false,
            message: wire_form(&r),
        },
        mail_send::Error::AuthenticationFailed(r) => {
            DeliveryError::temporary(format!("authentication failed: {}", wire_form(&r)))
        }
        other => DeliveryError::temporary(other.to_string()),
    }
}

/// A reply as it looked on the wire: `550 5.1.1 text`.
fn wire_form(r: &smtp_proto::Response<String>) -> String {
    let text = r.message.split_whitespace().collect::<Vec<_>>().join(" ");
    match r.esc {
        [0, 0, 0] => format!("{} {text}", r.code),
        [a, b, c] => format!("{} {a}.{b}.{c} {text}", r.code),
    }
}
