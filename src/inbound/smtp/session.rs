//! One SMTP session as a state machine over any byte stream (TCP, TLS, or an in-memory duplex
//! in tests), built on smtp-proto's sans-io receivers.
//!
//! Decisions are made as early as the protocol allows: a reply address whose token does not
//! verify is refused at `RCPT TO` (550 5.1.1), so forged mail never reaches `DATA`; a declared
//! `SIZE` above the limit is refused at `MAIL FROM`; a message that grows past the limit is read
//! to its end, discarded and refused (552 5.3.4). `250` after `DATA` is sent only once the
//! pipeline's outcome is durably committed; a storage failure answers `451 4.3.0` so the sender
//! retries.
//!
//! Every session is on a budget, modelled on RFC 5321 §4.5.3.2's timeouts: the first EHLO must
//! come within `ehlo_timeout` of the greeting, every later command within `command_timeout` of
//! the previous reply (however it trickles in), and a message must keep arriving at
//! `min_data_rate` after a short grace; the whole session has a maximum duration and an error
//! budget. Message bytes are drawn from a budget all sessions share ([`DataBudget`]); mail only
//! for postmaster or bounce addresses has a much smaller size limit. A session the connection
//! table evicts (see [`crate::net::slots`]), or a daemon that is shutting down, answers `421`
//! instead of dropping the connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use smtp_proto::request::receiver::{DataReceiver, DummyDataReceiver, RequestReceiver};
use smtp_proto::{Error as ProtoError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::budget::{DataBudget, Drawn};
use crate::domain::Via;
use crate::inbound::auth::Peer;
use crate::inbound::pipeline::{Envelope, Outcome, Pipeline, Recipient, RecipientError};
use crate::net::slots::Slot;
use crate::store::TokenTarget;

/// How long a message may take to start flowing before `min_data_rate` applies.
pub const DATA_GRACE: Duration = Duration::from_secs(30);
/// How long a last `421` may take to be written to a client that does not read.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(2);

/// Limits and identity of the SMTP service.
#[derive(Clone)]
pub struct SessionParams {
    pub hostname: String,
    pub max_message_bytes: usize,
    /// Limit for a message whose recipients are all postmaster or bounce addresses.
    pub max_report_bytes: usize,
    pub max_recipients: usize,
    pub max_errors: u32,
    /// From the greeting to the first EHLO/HELO.
    pub ehlo_timeout: Duration,
    /// From one reply to the whole next command; also the longest pause during DATA.
    pub command_timeout: Duration,
    /// Bytes per second a message must keep arriving at, after `data_grace`.
    pub min_data_rate: u64,
    /// How long a message may take to start flowing ([`DATA_GRACE`] in the daemon).
    pub data_grace: Duration,
    pub max_duration: Duration,
    pub tls: Option<TlsAcceptor>,
}

/// What every session shares.
pub struct Shared {
    pub params: SessionParams,
    pub pipeline: Pipeline,
    pub budget: DataBudget,
}

/// Why a message being received is not kept.
#[derive(Clone, Copy)]
enum Discarding {
    /// Over the size limit: 552, for good.
    TooBig,
    /// The shared budget is spent: 452, try later.
    OverBudget,
}

enum State {
    Request,
    Data(DataReceiver),
    /// The message is not kept: read it to its end, keep nothing.
    Discard(DummyDataReceiver, Discarding),
}

/// What became of a read's bytes: the session goes on, or ends (after the answers gathered
/// so far), or turns to TLS.
enum Turn {
    Continue,
    Close,
    Quit,
    StartTls,
}

enum Exit<S> {
    Closed,
    StartTls(S),
}

/// What became of a read's command bytes.
enum RequestStep {
    /// The command goes on in the next read.
    More,
    /// A command was answered (or refused); more may follow in this read.
    Answered,
    /// DATA was accepted: what follows is the message.
    Data,
    /// Too many errors: the 421 in `out` is the last word.
    Close,
    Quit,
    StartTls,
}

/// What became of a read's message bytes.
enum DataStep {
    /// The message ended and was answered.
    Answered,
    /// It goes on in the next read.
    More,
    /// It is too big (or over the shared budget): the rest is read and dropped.
    Discard(Discarding),
}

/// The session's time limits as they move: the command being waited for must be complete by
/// `command_due`; a message must arrive at `smtp.min_data_rate` after a grace period, with no
/// gap longer than the command timeout.
struct Deadlines {
    started: Instant,
    command_due: Instant,
    data_started: Instant,
    /// Bytes of the message in progress, kept or not: the minimum rate counts them all.
    data_received: u64,
    last_read: Instant,
}

impl Deadlines {
    fn new(started: Instant, p: &SessionParams) -> Deadlines {
        Deadlines {
            started,
            command_due: started + p.ehlo_timeout,
            data_started: started,
            data_received: 0,
            last_read: started,
        }
    }

    /// When the phase `state` is in runs out.
    fn due(&self, state: &State, p: &SessionParams) -> Instant {
        match state {
            State::Request => self.command_due,
            State::Data(_) | State::Discard(..) => {
                let allowed =
                    p.data_grace + Duration::from_secs(self.data_received / p.min_data_rate.max(1));
                (self.data_started + allowed).min(self.last_read + p.command_timeout)
            }
        }
    }

    fn read(&mut self, n: usize, state: &State) {
        self.last_read = Instant::now();
        if !matches!(state, State::Request) {
            self.data_received += n as u64;
        }
    }

    /// DATA was accepted; `already` bytes of the message came with the command.
    fn data_began(&mut self, already: usize) {
        self.data_started = Instant::now();
        self.data_received = already as u64;
    }

    /// Replies went out: the next command is due a command timeout from now (before EHLO,
    /// within the greeting's limit from the start).
    fn replied(&mut self, greeted: bool, p: &SessionParams) {
        self.command_due = if greeted {
            Instant::now() + p.command_timeout
        } else {
            self.started + p.ehlo_timeout
        };
    }
}

/// What a command leads to.
enum Next {
    Continue,
    Data,
    Quit,
    StartTls,
}

#[derive(Default)]
struct Transaction {
    mail_from: Option<Option<String>>,
    rcpt_to: Vec<String>,
    verified: Vec<TokenTarget>,
    /// Some recipient is a reply address (not only postmaster or bounce addresses).
    has_reply: bool,
}

/// Serves one connection to its end. The caller's span names the peer; `slot` is its place
/// in the connection table.
pub async fn serve<S>(
    stream: S,
    peer: IpAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    slot: Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut session = Session::new(shared.clone(), slot, peer);
    if let Exit::StartTls(stream) = session.run(stream, true, &shutdown).await {
        let acceptor = shared
            .params
            .tls
            .clone()
            .expect("STARTTLS is only accepted when TLS is configured");
        match tokio::time::timeout(shared.params.command_timeout, acceptor.accept(stream)).await {
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
    slot: Slot,
    /// The client's address, for SPF.
    peer: IpAddr,
    helo: Option<String>,
    tls: bool,
    txn: Transaction,
    message: Vec<u8>,
    /// Budget drawn for `message`.
    drawn: Drawn,
    errors: u32,
    deadline: Instant,
}

/// Writes `bytes`, giving up after `limit`: a client that sends without reading must not hold
/// its session (and its buffered replies) for ever.
async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8], limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, stream.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

impl Session {
    fn new(shared: Arc<Shared>, slot: Slot, peer: IpAddr) -> Session {
        let deadline = Instant::now() + shared.params.max_duration;
        Session {
            shared,
            slot,
            peer,
            helo: None,
            tls: false,
            txn: Transaction::default(),
            message: Vec::new(),
            drawn: Drawn::default(),
            errors: 0,
            deadline,
        }
    }

    fn reset(&mut self) {
        self.txn = Transaction::default();
        self.message = Vec::new();
        self.drawn = Drawn::default();
    }

    /// The size limit of the transaction in progress.
    fn size_limit(&self) -> usize {
        let p = &self.shared.params;
        if self.txn.has_reply || self.txn.rcpt_to.is_empty() {
            p.max_message_bytes
        } else {
            p.max_report_bytes.min(p.max_message_bytes)
        }
    }

    async fn run<S>(&mut self, mut stream: S, greet: bool, shutdown: &CancellationToken) -> Exit<S>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let p = self.shared.params.clone();
        let mut out: Vec<u8> = Vec::new();
        let started = Instant::now();
        if greet {
            reply(&mut out, 220, "", &format!("{} ESMTP Sealpost", p.hostname));
            if !send(&mut stream, &out, p.command_timeout).await {
                return Exit::Closed;
            }
        }
        out.clear();
        let mut receiver = RequestReceiver::default();
        let mut state = State::Request;
        let mut buf = vec![0u8; 16 * 1024];
        let mut deadlines = Deadlines::new(started, &p);
        self.slot.idle();
        loop {
            let phase_due = deadlines.due(&state, &p);
            let read = tokio::select! {
                r = stream.read(&mut buf) => Ok(r),
                _ = shutdown.cancelled() => Err(&b"421 4.3.0 Service shutting down, try again later\r\n"[..]),
                _ = self.slot.evicted() => {
                    info!("idle connection closed to make room for a new one");
                    Err(&b"421 4.3.2 Too busy, closing idle connection\r\n"[..])
                }
                _ = tokio::time::sleep_until(self.deadline.min(phase_due)) => Err(self.too_late(&state)),
            };
            let read = match read {
                Ok(read) => read,
                Err(farewell) => {
                    let _ = send(&mut stream, farewell, FAREWELL_TIMEOUT).await;
                    return Exit::Closed;
                }
            };
            let n = match read {
                Ok(0) | Err(_) => {
                    if matches!(state, State::Data(_) | State::Discard(..)) {
                        info!("client disconnected during DATA; nothing filed");
                    }
                    return Exit::Closed;
                }
                Ok(n) => n,
            };
            deadlines.read(n, &state);
            let mut bytes = buf[..n].iter();
            match self
                .consume(
                    &mut state,
                    &mut receiver,
                    &mut bytes,
                    &mut out,
                    &mut deadlines,
                )
                .await
            {
                Turn::Continue => {}
                Turn::Close => {
                    let _ = send(&mut stream, &out, FAREWELL_TIMEOUT).await;
                    return Exit::Closed;
                }
                Turn::Quit => {
                    let _ = send(&mut stream, &out, FAREWELL_TIMEOUT).await;
                    let _ = stream.shutdown().await;
                    return Exit::Closed;
                }
                Turn::StartTls => {
                    if !send(&mut stream, &out, p.command_timeout).await {
                        return Exit::Closed;
                    }
                    // Anything pipelined after STARTTLS was sent in clear text and is
                    // discarded (RFC 3207).
                    return Exit::StartTls(stream);
                }
            }
            let answered = !out.is_empty();
            if answered {
                if !send(&mut stream, &out, p.command_timeout).await {
                    return Exit::Closed;
                }
                out.clear();
            }
            if answered && matches!(state, State::Request) {
                // Replies are out; what comes next is a new command, due in time. Bytes of a
                // command still arriving do not move this.
                deadlines.replied(self.helo.is_some(), &p);
                self.slot.idle();
            }
        }
    }

    /// Everything one read brought, command by command and through message data, answers
    /// gathered in `out`; stops early when the connection must end or change.
    async fn consume(
        &mut self,
        state: &mut State,
        receiver: &mut RequestReceiver,
        bytes: &mut std::slice::Iter<'_, u8>,
        out: &mut Vec<u8>,
        deadlines: &mut Deadlines,
    ) -> Turn {
        loop {
            match state {
                State::Request => match self.request_bytes(receiver, bytes, out).await {
                    RequestStep::More => return Turn::Continue,
                    RequestStep::Answered => {}
                    RequestStep::Data => {
                        *state = State::Data(DataReceiver::new());
                        // The rest of this read is message data.
                        deadlines.data_began(bytes.len());
                    }
                    RequestStep::Close => return Turn::Close,
                    RequestStep::Quit => return Turn::Quit,
                    RequestStep::StartTls => return Turn::StartTls,
                },
                State::Data(data) => match self.data_bytes(data, bytes, out).await {
                    DataStep::Answered => *state = State::Request,
                    DataStep::More => return Turn::Continue,
                    DataStep::Discard(why) => {
                        *state = State::Discard(DummyDataReceiver::new_data(data), why);
                    }
                },
                State::Discard(dummy, why) => {
                    if !dummy.ingest(bytes) {
                        return Turn::Continue;
                    }
                    let why = *why;
                    self.refuse(out, why);
                    *state = State::Request;
                }
            }
            if bytes.len() == 0 {
                return Turn::Continue;
            }
        }
    }

    /// Command bytes as they arrive: a complete command is carried out and answered (into
    /// `out`); a malformed one counts as an error.
    async fn request_bytes(
        &mut self,
        receiver: &mut RequestReceiver,
        bytes: &mut std::slice::Iter<'_, u8>,
        out: &mut Vec<u8>,
    ) -> RequestStep {
        let request = match receiver.ingest(bytes) {
            Ok(r) => r.into_owned(),
            Err(ProtoError::NeedsMoreData { .. }) => return RequestStep::More,
            Err(e) => {
                self.protocol_error(out, e);
                return if self.too_many_errors(out) {
                    RequestStep::Close
                } else {
                    RequestStep::Answered
                };
            }
        };
        self.slot.busy();
        let next = self.command(request, out).await;
        if self.too_many_errors(out) {
            return RequestStep::Close;
        }
        match next {
            Next::Continue => RequestStep::Answered,
            Next::Data => RequestStep::Data,
            Next::Quit => RequestStep::Quit,
            Next::StartTls => RequestStep::StartTls,
        }
    }

    /// Message bytes as they arrive: kept while the message is within its size limit and the
    /// shared budget, else read and dropped from then on; the end of the data is answered.
    async fn data_bytes(
        &mut self,
        data: &mut DataReceiver,
        bytes: &mut std::slice::Iter<'_, u8>,
        out: &mut Vec<u8>,
    ) -> DataStep {
        let done = data.ingest(bytes, &mut self.message);
        let limit = self.size_limit();
        let discard = if self.message.len() > limit {
            Some(Discarding::TooBig)
        } else if !self
            .shared
            .budget
            .cover(&mut self.drawn, self.message.len())
        {
            Some(Discarding::OverBudget)
        } else {
            None
        };
        match (done, discard) {
            (true, Some(why)) => {
                self.refuse(out, why);
                DataStep::Answered
            }
            (true, None) => {
                self.end_of_data(out).await;
                DataStep::Answered
            }
            (false, Some(why)) => {
                self.message = Vec::new();
                self.drawn = Drawn::default();
                DataStep::Discard(why)
            }
            (false, None) => DataStep::More,
        }
    }

    /// Past `smtp.max_errors`: the session ends with a 421 (added to `out`).
    fn too_many_errors(&self, out: &mut Vec<u8>) -> bool {
        let over = self.errors > self.shared.params.max_errors;
        if over {
            reply(out, 421, "4.7.0", "Too many errors, closing");
        }
        over
    }

    /// The farewell when a deadline passed: the session's, a command's, or the data rate's.
    fn too_late(&self, state: &State) -> &'static [u8] {
        if Instant::now() >= self.deadline {
            b"421 4.4.2 Session too long, closing\r\n"
        } else if matches!(state, State::Request) {
            b"421 4.4.2 Timeout, closing\r\n"
        } else {
            info!("client too slow during DATA; nothing filed");
            b"421 4.4.2 Data transfer too slow, closing\r\n"
        }
    }

    /// Answers a message that was read but not kept.
    fn refuse(&mut self, out: &mut Vec<u8>, why: Discarding) {
        match why {
            Discarding::TooBig => {
                info!("message over the size limit refused");
                reply(out, 552, "5.3.4", "Message too big for this system");
            }
            Discarding::OverBudget => {
                warn!("message refused for now: the memory budget for incoming mail is spent");
                reply(
                    out,
                    452,
                    "4.3.1",
                    "Insufficient system storage, try again later",
                );
            }
        }
        self.reset();
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
            Request::Ehlo { host } => self.ehlo(host, out),
            Request::Helo { host } | Request::Lhlo { host } => {
                self.helo = Some(host);
                self.reset();
                reply(out, 250, "", &p.hostname);
            }
            Request::Mail { from } => self.mail(from, out),
            Request::Rcpt { to } => self.rcpt(to.address, out).await,
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

    /// EHLO: a fresh transaction, and what this server offers.
    fn ehlo(&mut self, host: String, out: &mut Vec<u8>) {
        self.helo = Some(host);
        self.reset();
        let mut lines = vec![
            format!("{} greets you", self.shared.params.hostname),
            "PIPELINING".into(),
            "8BITMIME".into(),
            "SMTPUTF8".into(),
            "ENHANCEDSTATUSCODES".into(),
            format!("SIZE {}", self.shared.params.max_message_bytes),
        ];
        if self.shared.params.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            out.extend_from_slice(format!("250{sep}{l}\r\n").as_bytes());
        }
    }

    /// MAIL FROM: one sender per transaction, after EHLO, within the size limits.
    fn mail(&mut self, from: smtp_proto::MailFrom<String>, out: &mut Vec<u8>) {
        if self.helo.is_none() {
            self.errors += 1;
            reply(out, 503, "5.5.1", "Say EHLO first");
        } else if self.txn.mail_from.is_some() {
            self.errors += 1;
            reply(out, 503, "5.5.1", "Sender already given");
        } else if from.size > self.shared.params.max_message_bytes {
            reply(out, 552, "5.3.4", "Message too big for this system");
        } else if from.size > self.shared.budget.available() {
            reply(
                out,
                452,
                "4.3.1",
                "Insufficient system storage, try again later",
            );
        } else {
            let sender = (!from.address.is_empty()).then_some(from.address);
            self.txn.mail_from = Some(sender);
            reply(out, 250, "2.1.0", "Sender OK");
        }
    }

    /// RCPT TO: only our own reply addresses (verified here, at RCPT), bounces to us and
    /// postmaster; at most `smtp.max_recipients`.
    async fn rcpt(&mut self, address: String, out: &mut Vec<u8>) {
        if self.txn.mail_from.is_none() {
            self.errors += 1;
            reply(out, 503, "5.5.1", "Need MAIL before RCPT");
        } else if self.txn.rcpt_to.len() >= self.shared.params.max_recipients {
            reply(out, 452, "4.5.3", "Too many recipients");
        } else {
            match self.shared.pipeline.check_recipient(&address).await {
                Ok(kind) => {
                    self.txn.has_reply |= !kind.is_report();
                    match kind {
                        Recipient::Postmaster => info!("mail for postmaster accepted"),
                        Recipient::Reply(target) => self.txn.verified.push(target),
                        Recipient::Bounce(_) => {}
                    }
                    self.txn.rcpt_to.push(address);
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

    async fn end_of_data(&mut self, out: &mut Vec<u8>) {
        let envelope = Envelope {
            mail_from: self.txn.mail_from.clone().flatten(),
            null_sender: matches!(self.txn.mail_from, Some(None)),
            rcpt_to: std::mem::take(&mut self.txn.rcpt_to),
            verified: std::mem::take(&mut self.txn.verified),
            door: Via::Smtp,
            imap: None,
            peer: Some(Peer {
                ip: self.peer,
                helo: self.helo.clone().unwrap_or_default(),
            }),
        };
        let raw = std::mem::take(&mut self.message);
        // The message's share of the budget stays drawn until it has been handled.
        let drawn = std::mem::take(&mut self.drawn);
        self.reset();
        let processed = self.shared.pipeline.process(&envelope, raw).await;
        drop(drawn);
        match processed {
            // What cannot be filed is refused here, while the transaction is open, or held:
            // never acknowledged and dropped (see `domain::fate`).
            Ok(Outcome::Refused { refusal, .. }) => {
                let r = refusal.unwrap_or(crate::domain::fate::Refusal {
                    code: 550,
                    status: "5.7.1",
                    text: "Not accepted",
                });
                reply(out, r.code, r.status, r.text)
            }
            Ok(outcome) => {
                let text = match outcome {
                    Outcome::Filed { .. } => "Filed",
                    Outcome::Duplicate { .. } => "Already filed",
                    Outcome::Held { .. } => "Accepted for review",
                    _ => "Accepted",
                };
                reply(out, 250, "2.0.0", text);
            }
            // The held queue is full for where this comes from: kept by the sender's server and
            // tried again later, never acknowledged and dropped.
            Err(crate::inbound::pipeline::Temporary::HeldFull(_)) => reply(
                out,
                452,
                "4.3.1",
                "Too much mail from you is waiting for review; try again later",
            ),
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
    if code >= 400 {
        let code = code.to_string();
        crate::metrics::count(
            &crate::metrics::metrics().smtp_refusals,
            [("code", code.as_str())],
        );
    }
    let line = if esc.is_empty() {
        format!("{code} {text}\r\n")
    } else {
        format!("{code} {esc} {text}\r\n")
    };
    out.extend_from_slice(line.as_bytes());
}

#[cfg(test)]
mod tests;
