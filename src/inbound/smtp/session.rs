//! One SMTP session as a state machine over any byte stream (TCP, TLS, or an in-memory duplex
//! in tests), built on smtp-proto's sans-io receivers.
//!
//! Decisions are made as early as the protocol allows: a reply address whose token does not
//! verify is refused at `RCPT TO` (550 5.1.1), so forged mail never reaches `DATA`; a declared
//! `SIZE` above the limit is refused at `MAIL FROM`; a message that grows past the limit is read
//! to its end, discarded and refused (552 5.3.4). `250` after `DATA` is sent only once the
//! pipeline's outcome is durably committed; a storage failure answers `451 4.3.0` so the sender
//! retries. Every read has a timeout, the session a maximum duration and an error budget, and
//! a daemon that is shutting down answers `421 4.3.0` instead of dropping the connection.

use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::inbound::pipeline::{Envelope, Outcome, Pipeline, Recipient, RecipientError};
use crate::store::{Door, TokenTarget};

/// Limits and identity of the SMTP service.
#[derive(Clone)]
pub struct SessionParams {
    pub hostname: String,
    pub max_message_bytes: usize,
    pub max_recipients: usize,
    pub max_errors: u32,
    pub read_timeout: Duration,
    pub max_duration: Duration,
    pub tls: Option<TlsAcceptor>,
}

/// What every session shares.
pub struct Shared {
    pub params: SessionParams,
    pub pipeline: Pipeline,
}

enum State {
    Request,
    Data(DataReceiver),
    /// The message is over the size limit: read it to its end, keep nothing.
    Discard(DummyDataReceiver),
}

enum Exit<S> {
    Closed,
    StartTls(S),
}

enum Next {
    Continue,
    Data,
    Quit,
    StartTls,
}

struct Transaction {
    mail_from: Option<Option<String>>,
    rcpt_to: Vec<String>,
    verified: Vec<TokenTarget>,
}

/// Serves one connection to its end. The caller's span names the peer.
pub async fn serve<S>(stream: S, shared: Arc<Shared>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session::new(shared.clone());
    if let Exit::StartTls(stream) = session.run(stream, true, &shutdown).await {
        let acceptor = shared
            .params
            .tls
            .clone()
            .expect("STARTTLS is only accepted when TLS is configured");
        match tokio::time::timeout(shared.params.read_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => {
                session.tls = true;
                session.helo = None;
                session.reset();
                session.run(tls, false, &shutdown).await;
            }
            Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
            Err(_) => debug!("TLS handshake timed out"),
        }
    }
}

struct Session {
    shared: Arc<Shared>,
    helo: Option<String>,
    tls: bool,
    txn: Transaction,
    message: Vec<u8>,
    errors: u32,
    deadline: Instant,
}

impl Session {
    fn new(shared: Arc<Shared>) -> Session {
        let deadline = Instant::now() + shared.params.max_duration;
        Session {
            shared,
            helo: None,
            tls: false,
            txn: Transaction {
                mail_from: None,
                rcpt_to: Vec::new(),
                verified: Vec::new(),
            },
            message: Vec::new(),
            errors: 0,
            deadline,
        }
    }

    fn reset(&mut self) {
        self.txn = Transaction {
            mail_from: None,
            rcpt_to: Vec::new(),
            verified: Vec::new(),
        };
        self.message = Vec::new();
    }

    async fn run<S>(&mut self, mut stream: S, greet: bool, shutdown: &CancellationToken) -> Exit<S>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut out: Vec<u8> = Vec::new();
        if greet {
            reply(
                &mut out,
                220,
                "",
                &format!("{} ESMTP Sealpost", self.shared.params.hostname),
            );
            if stream.write_all(&out).await.is_err() {
                return Exit::Closed;
            }
            out.clear();
        }
        let mut receiver = RequestReceiver::default();
        let mut state = State::Request;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let read = tokio::select! {
                r = tokio::time::timeout(self.shared.params.read_timeout, stream.read(&mut buf)) => r,
                _ = shutdown.cancelled() => {
                    let _ = stream.write_all(b"421 4.3.0 Service shutting down, try again later\r\n").await;
                    return Exit::Closed;
                }
                _ = tokio::time::sleep_until(self.deadline) => {
                    let _ = stream.write_all(b"421 4.4.2 Session too long, closing\r\n").await;
                    return Exit::Closed;
                }
            };
            let n = match read {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    if matches!(state, State::Data(_) | State::Discard(_)) {
                        info!("client disconnected during DATA; nothing filed");
                    }
                    return Exit::Closed;
                }
                Ok(Ok(n)) => n,
                Err(_) => {
                    let _ = stream.write_all(b"421 4.4.2 Timeout, closing\r\n").await;
                    return Exit::Closed;
                }
            };
            let mut bytes = buf[..n].iter();
            loop {
                match &mut state {
                    State::Request => {
                        let request = match receiver.ingest(&mut bytes) {
                            Ok(r) => r.into_owned(),
                            Err(ProtoError::NeedsMoreData { .. }) => break,
                            Err(e) => {
                                self.protocol_error(&mut out, e);
                                if self.errors > self.shared.params.max_errors {
                                    reply(&mut out, 421, "4.7.0", "Too many errors, closing");
                                    let _ = stream.write_all(&out).await;
                                    return Exit::Closed;
                                }
                                continue;
                            }
                        };
                        match self.command(request, &mut out).await {
                            Next::Continue => {}
                            Next::Data => state = State::Data(DataReceiver::new()),
                            Next::Quit => {
                                let _ = stream.write_all(&out).await;
                                let _ = stream.shutdown().await;
                                return Exit::Closed;
                            }
                            Next::StartTls => {
                                if stream.write_all(&out).await.is_err() {
                                    return Exit::Closed;
                                }
                                // Anything pipelined after STARTTLS was sent in clear text and
                                // is discarded (RFC 3207).
                                return Exit::StartTls(stream);
                            }
                        }
                        if self.errors > self.shared.params.max_errors {
                            reply(&mut out, 421, "4.7.0", "Too many errors, closing");
                            let _ = stream.write_all(&out).await;
                            return Exit::Closed;
                        }
                    }
                    State::Data(data) => {
                        let done = data.ingest(&mut bytes, &mut self.message);
                        let too_big = self.message.len() > self.shared.params.max_message_bytes;
                        if done && too_big {
                            info!("message over the size limit refused");
                            reply(&mut out, 552, "5.3.4", "Message too big for this system");
                            self.reset();
                            state = State::Request;
                        } else if done {
                            self.end_of_data(&mut out).await;
                            state = State::Request;
                        } else if self.message.len() > self.shared.params.max_message_bytes {
                            state = State::Discard(DummyDataReceiver::new_data(data));
                            self.message = Vec::new();
                        } else {
                            break;
                        }
                    }
                    State::Discard(dummy) => {
                        if dummy.ingest(&mut bytes) {
                            info!("message over the size limit refused");
                            reply(&mut out, 552, "5.3.4", "Message too big for this system");
                            self.reset();
                            state = State::Request;
                        } else {
                            break;
                        }
                    }
                }
                if bytes.len() == 0 {
                    break;
                }
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    return Exit::Closed;
                }
                out.clear();
            }
        }
    }

    fn protocol_error(&mut self, out: &mut Vec<u8>, e: ProtoError) {
        self.errors += 1;
        match e {
            ProtoError::UnknownCommand => reply(out, 500, "5.5.1", "Command unrecognized"),
            ProtoError::ResponseTooLong => reply(out, 500, "5.5.2", "Line too long"),
            ProtoError::InvalidSenderAddress => {
                reply(out, 501, "5.1.7", "Bad sender address syntax")
            }
            ProtoError::InvalidRecipientAddress => {
                reply(out, 501, "5.1.3", "Bad recipient address syntax")
            }
            ProtoError::SyntaxError { syntax } => {
                reply(out, 501, "5.5.4", &format!("Syntax: {syntax}"))
            }
            ProtoError::InvalidParameter { .. } | ProtoError::UnsupportedParameter { .. } => {
                reply(out, 501, "5.5.4", "Unsupported parameter")
            }
            _ => reply(out, 500, "5.5.1", "Command unrecognized"),
        }
    }

    async fn command(&mut self, request: Request<String>, out: &mut Vec<u8>) -> Next {
        let shared = self.shared.clone();
        let p = &shared.params;
        match request {
            Request::Ehlo { host } => {
                self.helo = Some(host);
                self.reset();
                let mut lines = vec![
                    format!("{} greets you", p.hostname),
                    "PIPELINING".into(),
                    "8BITMIME".into(),
                    "SMTPUTF8".into(),
                    "ENHANCEDSTATUSCODES".into(),
                    format!("SIZE {}", p.max_message_bytes),
                ];
                if p.tls.is_some() && !self.tls {
                    lines.push("STARTTLS".into());
                }
                for (i, l) in lines.iter().enumerate() {
                    let sep = if i + 1 == lines.len() { ' ' } else { '-' };
                    out.extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
                }
            }
            Request::Helo { host } | Request::Lhlo { host } => {
                self.helo = Some(host);
                self.reset();
                reply(out, 250, "", &p.hostname);
            }
            Request::Mail { from } => {
                if self.helo.is_none() {
                    self.errors += 1;
                    reply(out, 503, "5.5.1", "Say EHLO first");
                } else if self.txn.mail_from.is_some() {
                    self.errors += 1;
                    reply(out, 503, "5.5.1", "Sender already given");
                } else if from.size > p.max_message_bytes {
                    reply(out, 552, "5.3.4", "Message too big for this system");
                } else {
                    let sender = (!from.address.is_empty()).then_some(from.address);
                    self.txn.mail_from = Some(sender);
                    reply(out, 250, "2.1.0", "Sender OK");
                }
            }
            Request::Rcpt { to } => {
                if self.txn.mail_from.is_none() {
                    self.errors += 1;
                    reply(out, 503, "5.5.1", "Need MAIL before RCPT");
                } else if self.txn.rcpt_to.len() >= p.max_recipients {
                    reply(out, 452, "4.5.3", "Too many recipients");
                } else {
                    match self.shared.pipeline.check_recipient(&to.address).await {
                        Ok(kind) => {
                            match kind {
                                Recipient::Postmaster => info!("mail for postmaster accepted"),
                                Recipient::Reply(target) => self.txn.verified.push(target),
                                Recipient::Bounce(_) => {}
                            }
                            self.txn.rcpt_to.push(to.address);
                            reply(out, 250, "2.1.5", "Recipient OK");
                        }
                        Err(RecipientError::Unavailable) => {
                            reply(
                                out,
                                451,
                                "4.3.0",
                                "Temporary failure, please try again later",
                            );
                        }
                        Err(e) => {
                            self.errors += 1;
                            let reason = match &e {
                                RecipientError::Token(r) => r,
                                RecipientError::Unknown => "unknown-address",
                                RecipientError::Gone => "participant-gone",
                                RecipientError::Revoked => "participant-revoked",
                                RecipientError::Unavailable => "unavailable",
                            };
                            info!(reason, "recipient refused");
                            reply(out, 550, "5.1.1", "No such recipient here");
                        }
                    }
                }
            }
            Request::Data => {
                if self.txn.mail_from.is_none() || self.txn.rcpt_to.is_empty() {
                    self.errors += 1;
                    reply(out, 503, "5.5.1", "Need MAIL and RCPT before DATA");
                } else {
                    reply(out, 354, "", "Start mail input; end with <CRLF>.<CRLF>");
                    return Next::Data;
                }
            }
            Request::Rset => {
                self.reset();
                reply(out, 250, "2.0.0", "OK");
            }
            Request::Noop { .. } => reply(out, 250, "2.0.0", "OK"),
            Request::Vrfy { .. } => reply(
                out,
                252,
                "2.5.0",
                "Cannot VRFY user, but will accept message",
            ),
            Request::Quit => {
                reply(out, 221, "2.0.0", "Bye");
                return Next::Quit;
            }
            Request::StartTls => {
                if self.tls {
                    self.errors += 1;
                    reply(out, 503, "5.5.1", "TLS already active");
                } else if p.tls.is_none() {
                    self.errors += 1;
                    reply(out, 502, "5.5.1", "STARTTLS not available");
                } else {
                    reply(out, 220, "2.0.0", "Ready to start TLS");
                    return Next::StartTls;
                }
            }
            _ => {
                self.errors += 1;
                reply(out, 502, "5.5.1", "Command not implemented");
            }
        }
        Next::Continue
    }

    async fn end_of_data(&mut self, out: &mut Vec<u8>) {
        let envelope = Envelope {
            mail_from: self.txn.mail_from.clone().flatten(),
            null_sender: matches!(self.txn.mail_from, Some(None)),
            rcpt_to: std::mem::take(&mut self.txn.rcpt_to),
            verified: std::mem::take(&mut self.txn.verified),
            door: Door::Smtp,
            imap: None,
        };
        let raw = std::mem::take(&mut self.message);
        self.reset();
        match self.shared.pipeline.process(&envelope, raw).await {
            Ok(outcome) => {
                let text = match outcome {
                    Outcome::Filed { .. } => "Filed",
                    Outcome::Duplicate { .. } => "Already filed",
                    Outcome::Held { .. } => "Accepted for review",
                    _ => "Accepted",
                };
                reply(out, 250, "2.0.0", text);
            }
            Err(e) => {
                warn!(error = %e, "message not committed; asking the sender to retry");
                reply(
                    out,
                    451,
                    "4.3.0",
                    "Temporary failure, please try again later",
                );
            }
        }
    }
}

fn reply(out: &mut Vec<u8>, code: u16, esc: &str, text: &str) {
    let line = if esc.is_empty() {
        format!("{code} {text}\r\n")
    } else {
        format!("{code} {esc} {text}\r\n")
    };
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests;
