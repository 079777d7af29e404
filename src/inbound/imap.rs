//! The IMAP door: a poller that watches one mailbox and feeds every message through the same
//! pipeline as SMTP.
//!
//! It logs in, selects `imap.mailbox`, handles every message there, then waits with IDLE (re-
//! issued every [`IDLE_REISSUE`], well inside the 29-minute limit) or, without IDLE, polls every
//! `imap.poll_interval_secs`. After any error — the server restarting, a dropped connection, a
//! timeout, an unexpected answer — it reconnects with capped exponential backoff and jitter. It
//! never exits on its own and never spins.
//!
//! A message is moved out of the mailbox only after its outcome is committed: filed or duplicate
//! to `imap.processed_mailbox`, anything else to `imap.rejected_mailbox`. A crash between the
//! commit and the move is harmless: the ledger remembers the outcome by UIDVALIDITY and UID, and
//! the Message-ID dedupe inside the commit files nothing twice even when UIDVALIDITY changed.
//! A message above the size limit (known from RFC822.SIZE) is rejected without being downloaded.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::Fetch;
use futures_util::TryStreamExt;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::pipeline::{Envelope, Pipeline, Temporary};
use crate::config::{Imap, ImapTls};
use crate::domain::MessageId;
use crate::domain::Via;
use crate::jobs::Holder;
use crate::store::{Inbound, InboundAction, Store};

/// IDLE is re-issued this often (servers may drop an IDLE after 29 minutes).
pub const IDLE_REISSUE: Duration = Duration::from_secs(20 * 60);
/// Limit for connecting, logging in, and each command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The lease that makes one poller run, however many instances share the database.
pub const LEASE: &str = "imap-poller";
/// How long the lease holds without renewal: an instance that dies hands the mailbox over
/// this long after its last renewal.
pub const LEASE_SECS: i64 = 60;
/// Messages fetched, filed and moved together.
const DRAIN_BATCH: usize = 32;
/// Bytes fetched together: a batch of large messages is held in memory at once.
const DRAIN_BATCH_BYTES: u64 = 32 * 1024 * 1024;

type Conn = Either<TcpStream, TlsStream<TcpStream>>;
type Session = async_imap::Session<Conn>;

/// Why a connection ended; every one of them leads to a reconnect.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("login refused: {0}")]
    Login(String),
    #[error("IMAP: {0}")]
    Protocol(#[from] async_imap::error::Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server did not answer within {} s", COMMAND_TIMEOUT.as_secs())]
    Timeout,
    #[error(transparent)]
    Storage(#[from] Temporary),
    #[error("cannot read the password file {0}: {1}")]
    Password(PathBuf, std::io::Error),
    #[error("the server did not report UIDVALIDITY")]
    NoUidValidity,
}

/// What the poller has done, for logs and tests.
#[derive(Debug, Default)]
pub struct Counters {
    pub seen: AtomicU64,
    pub filed: AtomicU64,
    pub rejected: AtomicU64,
    pub reconnects: AtomicU64,
}

impl Counters {
    /// One log line with every counter.
    fn log(&self, message: &'static str) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        info!(
            seen = get(&self.seen),
            filed = get(&self.filed),
            rejected = get(&self.rejected),
            reconnects = get(&self.reconnects),
            "{message}"
        );
    }
}

/// Settings the poller needs, taken from the configuration.
#[derive(Clone)]
struct Params {
    host: String,
    port: u16,
    tls: ImapTls,
    connector: TlsConnector,
    username: String,
    password_file: PathBuf,
    mailbox: String,
    processed: String,
    rejected: String,
    poll_interval: Duration,
    max_message_bytes: u64,
}

/// The IMAP poller.
pub struct Poller {
    params: Params,
    pipeline: Pipeline,
    store: Store,
    pub counters: Arc<Counters>,
}

async fn timed<T, E: Into<ImapError>>(
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .map_err(|_| ImapError::Timeout)?
        .map_err(Into::into)
}

impl Poller {
    /// A poller for the `imap` section; larger messages than `max_message_bytes` are refused
    /// unread.
    pub fn new(
        i: &Imap,
        max_message_bytes: u64,
        pipeline: Pipeline,
        store: Store,
    ) -> Result<Poller, crate::tls::TlsError> {
        Ok(Poller {
            params: Params {
                host: i.host.clone(),
                port: i.port,
                tls: i.tls,
                connector: TlsConnector::from(crate::tls::client_config(i.ca_file.as_deref())?),
                username: i.username.clone(),
                password_file: i.password_file.clone().unwrap_or_default(),
                mailbox: i.mailbox.clone(),
                processed: i.processed_mailbox.clone(),
                rejected: i.rejected_mailbox.clone(),
                poll_interval: Duration::from_secs(i.poll_interval_secs),
                max_message_bytes,
            },
            pipeline,
            store,
            counters: Arc::default(),
        })
    }

    /// Watches the mailbox until `shutdown`, while `holder` holds the [`LEASE`] (one poller
    /// per mailbox, however many instances run); restarted with a growing pause if it ever
    /// panics.
    pub async fn run(self, holder: Holder, shutdown: CancellationToken) {
        let store = self.store.clone();
        crate::jobs::lease::while_held(&store, LEASE, &holder, LEASE_SECS, &shutdown, |stop| {
            let this = &self;
            async move {
                crate::supervise::restart_on_panic(
                    "imap-poller",
                    &stop,
                    crate::supervise::FIRST_PAUSE,
                    || this.watch(&stop),
                )
                .await;
            }
        })
        .await;
        self.counters.log("IMAP poller stopped");
    }

    /// Connects, handles the mailbox and waits for more, reconnecting after every error, until
    /// `shutdown`.
    async fn watch(&self, shutdown: &CancellationToken) {
        let mut backoff = BACKOFF_FIRST;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            let result = self.session(shutdown, &mut backoff).await;
            if shutdown.is_cancelled() {
                break;
            }
            let error = match result {
                Ok(()) => continue,
                Err(e) => e,
            };
            self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
            set_state("disconnected");
            crate::metrics::count(
                &crate::metrics::metrics().imap_polls,
                [("result", "connection-lost")],
            );
            let jitter = 0.75
                + 0.5
                    * (u32::from_be_bytes(crate::crypto::random_bytes::<4>()) as f64
                        / u32::MAX as f64);
            let wait = backoff.mul_f64(jitter);
            warn!(host = %self.params.host, error = %error, retry_in_secs = wait.as_secs_f64().round(), "IMAP connection lost; reconnecting");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => break,
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn connect(&self) -> Result<Session, ImapError> {
        let p = &self.params;
        let password = std::fs::read_to_string(&p.password_file)
            .map_err(|e| ImapError::Password(p.password_file.clone(), e))?;
        let password = password.trim_end_matches(['\r', '\n']);
        let tcp = timed(TcpStream::connect((p.host.as_str(), p.port)))
            .await
            .map_err(|e| match e {
                ImapError::Io(io) => ImapError::Connect(io),
                other => other,
            })?;
        let _ = tcp.set_nodelay(true);
        let server_name =
            ServerName::try_from(p.host.clone()).map_err(|e| ImapError::Tls(e.to_string()))?;
        let tls = |tcp| async {
            timed(p.connector.connect(server_name.clone(), tcp))
                .await
                .map_err(|e| match e {
                    ImapError::Io(io) => ImapError::Tls(io.to_string()),
                    other => other,
                })
        };
        let mut client = match p.tls {
            ImapTls::Implicit => async_imap::Client::new(Either::Right(tls(tcp).await?)),
            ImapTls::None | ImapTls::Starttls => async_imap::Client::new(Either::Left(tcp)),
        };
        timed(client.read_response()).await?;
        if p.tls == ImapTls::Starttls {
            timed(client.run_command_and_check_ok("STARTTLS", None)).await?;
            let Either::Left(tcp) = client.into_inner() else {
                unreachable!("STARTTLS starts from a plain connection")
            };
            client = async_imap::Client::new(Either::Right(tls(tcp).await?));
        }
        let session = timed(async {
            client
                .login(&p.username, password)
                .await
                .map_err(|(e, _)| ImapError::Login(e.to_string()))
        })
        .await?;
        Ok(session)
    }

    /// One connection's life: connect, then handle the mailbox and wait, until an error.
    async fn session(
        &self,
        shutdown: &CancellationToken,
        backoff: &mut Duration,
    ) -> Result<(), ImapError> {
        let p = &self.params;
        let mut session = self.connect().await?;
        let caps = timed(session.capabilities()).await?;
        let idle = caps.has_str("IDLE");
        let can_move = caps.has_str("MOVE");
        // The server's hierarchy delimiter ("." for Dovecot's Maildir++, "/" elsewhere): the
        // configured folder names use "/", translated here.
        let delimiter = {
            let names: Vec<_> = timed(async {
                session
                    .list(Some(""), Some(&p.mailbox))
                    .await?
                    .try_collect::<Vec<_>>()
                    .await
            })
            .await?;
            names
                .iter()
                .find_map(|n| n.delimiter().map(str::to_owned))
                .unwrap_or_else(|| "/".into())
        };
        let folder = |name: &str| name.replace('/', &delimiter);
        let (processed, rejected) = (folder(&p.processed), folder(&p.rejected));
        for f in [&processed, &rejected] {
            // Fails when the folder exists; either way it exists afterwards.
            let _ = timed(session.create(f)).await;
        }
        info!(host = %p.host, mailbox = %p.mailbox, idle, can_move, "IMAP connected");
        let targets = Targets {
            processed: &processed,
            rejected: &rejected,
            can_move,
        };
        loop {
            set_state("polling");
            let mailbox = timed(session.select(&p.mailbox)).await?;
            let uidvalidity = i64::from(mailbox.uid_validity.ok_or(ImapError::NoUidValidity)?);
            let mut moved = 0;
            if mailbox.exists > 0 {
                moved = self.drain(&mut session, uidvalidity, &targets).await?;
                self.counters.log("IMAP mailbox handled");
            }
            // A full pass worked: the connection is healthy again.
            *backoff = BACKOFF_FIRST;
            crate::metrics::count(&crate::metrics::metrics().imap_polls, [("result", "ok")]);
            if shutdown.is_cancelled() {
                let _ = timed(session.logout()).await;
                return Ok(());
            }
            // Mail that arrived while this pass ran was announced (EXISTS) outside IDLE, where
            // nothing listens for it, and a server need not announce it again once IDLE
            // starts: look once more before waiting, or it could wait for the next IDLE
            // re-issue. A pass that moved nothing leaves nothing new to find.
            if moved > 0 {
                continue;
            }
            if idle {
                let mut handle = session.idle();
                timed(handle.init()).await?;
                debug!("IMAP idle");
                set_state("idle");
                let result = {
                    let (wait, stop) = handle.wait_with_timeout(IDLE_REISSUE);
                    tokio::pin!(wait);
                    tokio::select! {
                        r = &mut wait => { drop(stop); r }
                        _ = shutdown.cancelled() => { drop(stop); wait.await }
                    }
                };
                match result? {
                    IdleResponse::NewData(_) => debug!("IMAP mailbox changed"),
                    IdleResponse::Timeout => debug!("re-issuing IDLE"),
                    // async-imap reports a stream that ended as an interrupt; unless we asked for
                    // one, the server has gone.
                    IdleResponse::ManualInterrupt if !shutdown.is_cancelled() => {
                        return Err(ImapError::Protocol(
                            async_imap::error::Error::ConnectionLost,
                        ));
                    }
                    IdleResponse::ManualInterrupt => {}
                }
                session = timed(handle.done()).await?;
            } else {
                set_state("waiting");
                tokio::select! {
                    _ = tokio::time::sleep(p.poll_interval) => {}
                    _ = shutdown.cancelled() => {}
                }
                timed(session.noop()).await?;
            }
        }
    }

    /// Handles every message in the selected mailbox, oldest first, in batches: one FETCH for a
    /// batch's bodies, the pipeline run on all of them at once (so their commits are grouped),
    /// then one move per destination folder. Returns how many messages it moved out.
    async fn drain(
        &self,
        session: &mut Session,
        uidvalidity: i64,
        targets: &Targets<'_>,
    ) -> Result<usize, ImapError> {
        let mut listing: Vec<Fetch> = timed(async {
            session
                .uid_fetch("1:*", "(UID RFC822.SIZE)")
                .await?
                .try_collect::<Vec<_>>()
                .await
        })
        .await?;
        listing.sort_by_key(|f| f.uid);
        let mut moved = 0;
        for batch in batches(&listing, DRAIN_BATCH, DRAIN_BATCH_BYTES) {
            let mut decided: Vec<(u32, bool)> = Vec::with_capacity(batch.len());
            let mut to_fetch: Vec<u32> = Vec::new();
            for item in batch {
                let Some(uid) = item.uid else { continue };
                self.counters.seen.fetch_add(1, Ordering::Relaxed);
                match self
                    .store
                    .imap_outcome(uidvalidity, i64::from(uid))
                    .await
                    .map_err(Temporary::Store)?
                {
                    // Decided before (a crash came between the commit and the move).
                    Some(outcome) => decided.push((uid, outcome.is_filed())),
                    None if u64::from(item.size.unwrap_or(0)) > self.params.max_message_bytes => {
                        self.record_oversized(uidvalidity, uid).await?;
                        decided.push((uid, false));
                    }
                    None => to_fetch.push(uid),
                }
            }
            let mut failure = None;
            if !to_fetch.is_empty() {
                let set = uid_set(&to_fetch);
                let fetched: Vec<Fetch> = timed(async {
                    session
                        .uid_fetch(&set, "BODY.PEEK[]")
                        .await?
                        .try_collect::<Vec<_>>()
                        .await
                })
                .await?;
                let bodies: Vec<(u32, Vec<u8>)> = fetched
                    .iter()
                    .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
                    .collect();
                let outcomes =
                    futures_util::future::join_all(bodies.into_iter().map(|(uid, raw)| {
                        let envelope = Envelope {
                            mail_from: None,
                            null_sender: return_path_is_null(&raw),
                            rcpt_to: Vec::new(),
                            verified: Vec::new(),
                            door: Via::Imap,
                            imap: Some((uidvalidity, i64::from(uid))),
                            peer: None,
                        };
                        async move { (uid, self.pipeline.process(&envelope, raw).await) }
                    }))
                    .await;
                for (uid, outcome) in outcomes {
                    match outcome {
                        Ok(o) => decided.push((uid, o.is_filed())),
                        // Not committed: leave it in the mailbox for the next attempt.
                        Err(e) => failure = Some(e),
                    }
                }
            }
            for filed in [true, false] {
                let uids: Vec<u32> = decided
                    .iter()
                    .filter(|(_, f)| *f == filed)
                    .map(|(u, _)| *u)
                    .collect();
                if uids.is_empty() {
                    continue;
                }
                let counter = if filed {
                    &self.counters.filed
                } else {
                    &self.counters.rejected
                };
                counter.fetch_add(uids.len() as u64, Ordering::Relaxed);
                let to = if filed {
                    targets.processed
                } else {
                    targets.rejected
                };
                move_messages(session, &uid_set(&uids), to, targets.can_move).await?;
                moved += uids.len();
            }
            if let Some(e) = failure {
                return Err(e.into());
            }
        }
        Ok(moved)
    }

    /// Records a message over the size limit, without having downloaded it: it stays in the
    /// mailbox's rejected folder (the IMAP door cannot refuse, and the held queue does not
    /// take what is over the size limit), recorded as ignored with its reason.
    async fn record_oversized(&self, uidvalidity: i64, uid: u32) -> Result<(), ImapError> {
        info!(
            door = "imap",
            outcome = "ignored",
            reason = "too-large",
            "inbound message not filed"
        );
        let item = Inbound {
            id: MessageId::random().0,
            door: Via::Imap,
            received_at: self.store.clock().now(),
            thread: None,
            header_message_id: None,
            imap: Some((uidvalidity, i64::from(uid))),
            action: InboundAction::Record {
                outcome: crate::domain::LedgerOutcome::Ignored,
                reason: "too-large".to_owned(),
                notice: None,
            },
        };
        self.store
            .commit_inbound(item)
            .await
            .map(drop)
            .map_err(|e| ImapError::Storage(Temporary::Store(e)))
    }
}

struct Targets<'a> {
    processed: &'a str,
    rejected: &'a str,
    can_move: bool,
}

/// MOVE when the server has it; else COPY, flag \Deleted and expunge exactly those messages.
async fn move_messages(
    session: &mut Session,
    set: &str,
    to: &str,
    can_move: bool,
) -> Result<(), ImapError> {
    if can_move {
        return timed(session.uid_mv(set, to)).await;
    }
    timed(session.uid_copy(set, to)).await?;
    timed(async {
        session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    timed(async {
        session
            .uid_expunge(set)
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await?;
    Ok(())
}

/// Consecutive runs of `listing` of at most `count` messages and (unless one message alone is
/// larger) at most `bytes` by their RFC822.SIZE.
fn batches(listing: &[Fetch], count: usize, bytes: u64) -> Vec<&[Fetch]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut total = 0u64;
    for (i, f) in listing.iter().enumerate() {
        let size = u64::from(f.size.unwrap_or(0));
        if i > start && (i - start == count || total + size > bytes) {
            out.push(&listing[start..i]);
            start = i;
            total = 0;
        }
        total += size;
    }
    if start < listing.len() {
        out.push(&listing[start..]);
    }
    out
}

/// A UID set for a command: "3,7,8".
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether the message says its reverse path was null (`Return-Path: <>`), as a bounce's is.
fn return_path_is_null(raw: &[u8]) -> bool {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len().min(64 * 1024));
    String::from_utf8_lossy(&raw[..head_end]).lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(n, v)| n.eq_ignore_ascii_case("return-path") && v.trim() == "<>")
    })
}

/// Sets the poller's state gauge: 1 for `state`, 0 for the others.
fn set_state(state: &str) {
    let family = &crate::metrics::metrics().imap_state;
    for s in ["polling", "idle", "waiting", "disconnected"] {
        family
            .get_or_create(&crate::metrics::labels([("state", s)]))
            .set(i64::from(s == state));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_return_path() {
        assert!(return_path_is_null(
            b"Return-Path: <>\r\nFrom: x\r\n\r\nbody"
        ));
        assert!(!return_path_is_null(
            b"Return-Path: <a@b>\r\n\r\nReturn-Path: <>"
        ));
        assert!(!return_path_is_null(b"From: x\r\n\r\n"));
    }
}
