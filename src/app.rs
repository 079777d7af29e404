//! Wiring and lifecycle: what `sealpost serve` opens, in which order, and how it stops.
//!
//! Start-up is fail-fast: every resource is opened before systemd is told `READY=1`, so a unit
//! that reports active really is able to work. Shutdown is bounded: after SIGTERM the daemon
//! says `STOPPING=1`, lets the work in hand finish for at most [`DRAIN_TIMEOUT`], and exits.

use std::future::Future;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tracing::{info, warn};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Settings;
use crate::crypto::{KeyError, Keyring};
use crate::inbound::imap::Poller;
use crate::inbound::pipeline::Pipeline;
use crate::inbound::smtp;
use crate::inbound::smtp::budget::DataBudget;
use crate::inbound::smtp::session::{SessionParams, Shared};
use crate::inbound::smtp::slots::Slots;
use crate::outbound::compose::Composer;
use crate::outbound::templates::{TemplateError, Templates};
use crate::outbound::transport::{Transport, TransportError};
use crate::outbound::worker::{RetryPolicy, Worker};
use crate::store::{Store, StoreError};

/// How long work in progress may take to finish after SIGTERM.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot create directory {path}: {source}")]
    Directory {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates a directory (and its parents) private to the service user.
pub fn ensure_dir(path: &Path) -> Result<(), AppError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|source| AppError::Directory {
            path: path.to_owned(),
            source,
        })
}

/// Loads the keyring, creating one on first start. Only the daemon does this: a keyring made by
/// an interactive CLI call could belong to the wrong user.
pub fn load_or_create_keyring(path: &Path) -> Result<Keyring, AppError> {
    match Keyring::load(path) {
        Ok(k) => Ok(k),
        Err(KeyError::Missing(_)) => {
            let k = Keyring::generate();
            k.create(path)?;
            warn!(
                path = %path.display(),
                "generated a new keyring; back it up now: without it no stored message can be read and no reply token verifies"
            );
            Ok(k)
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens the store with an existing keyring (for CLI commands).
pub async fn open_store(settings: &Settings) -> Result<Store, AppError> {
    let keyring = Keyring::load(&settings.keys.path)?;
    Ok(Store::open(&settings.database.url, Arc::new(keyring)).await?)
}

/// The inbound pipeline as the configuration describes it; `wake` is told when something was
/// filed (the outbox has work).
pub fn pipeline(settings: &Settings, store: &Store, wake: Arc<Notify>) -> Pipeline {
    Pipeline::new(
        store.clone(),
        &settings.smtp.reply_domain,
        &settings.smtp.hostname,
        settings.policy.token_ttl_days,
        wake,
    )
    .with_boilerplate(vec![
        settings.general.organization.clone(),
        settings.outbound.convenience_notice.clone(),
    ])
}

/// Runs the daemon until `shutdown` completes.
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    ensure_dir(&settings.general.data_dir)?;
    crate::tls::install_default_provider();
    let keyring = Arc::new(load_or_create_keyring(&settings.keys.path)?);
    let templates = Templates::load(settings.outbound.templates_dir.as_deref())?;
    let transport = Transport::from_settings(&settings)?;
    let store = Store::open(&settings.database.url, keyring.clone()).await?;

    let stop = CancellationToken::new();
    let wake = Arc::new(Notify::new());
    let worker = Worker::new(
        store.clone(),
        Composer::new(&settings, templates, keyring.clone()),
        transport,
        RetryPolicy {
            base_secs: settings.outbound.retry_base_secs,
            max_attempts: settings.outbound.max_attempts,
        },
        wake.clone(),
    );
    // With SQLite this is the only process delivering: claims left by a killed predecessor are
    // dead, and its notifications go out now rather than when the leases expire.
    let released = store.release_claims(worker.owner()).await?;
    if released > 0 {
        info!(released, "released notifications claimed by a previous run");
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(worker.run(stop.clone()));

    // The SMTP door. Bound before READY=1, so "active" means mail can arrive.
    let tls = match (&settings.smtp.tls_cert, &settings.smtp.tls_key) {
        (Some(cert), Some(key)) => Some(TlsAcceptor::from(crate::tls::server_config(cert, key)?)),
        _ => None,
    };
    let listener = listen(settings.smtp.listen).map_err(|source| AppError::Listen {
        addr: settings.smtp.listen,
        source,
    })?;
    let pipeline = pipeline(&settings, &store, wake.clone());
    let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let shared = Arc::new(Shared {
        params: SessionParams {
            hostname: settings.smtp.hostname.clone(),
            max_message_bytes: bytes(settings.smtp.max_message_bytes),
            max_report_bytes: bytes(settings.smtp.max_report_bytes),
            max_recipients: settings.smtp.max_recipients,
            max_errors: settings.smtp.max_errors,
            ehlo_timeout: Duration::from_secs(settings.smtp.ehlo_timeout_secs),
            command_timeout: Duration::from_secs(settings.smtp.timeout_secs),
            min_data_rate: settings.smtp.min_data_rate,
            data_grace: crate::inbound::smtp::session::DATA_GRACE,
            max_duration: Duration::from_secs(settings.smtp.max_session_secs),
            tls,
        },
        pipeline,
        budget: DataBudget::new(settings.smtp.max_inflight_bytes),
    });
    if settings.imap.enabled {
        let poller = Poller::new(&settings, shared.pipeline.clone(), store.clone())?;
        info!(host = %settings.imap.host, mailbox = %settings.imap.mailbox, "IMAP poller starting");
        tasks.spawn(poller.run(stop.clone()));
    }
    let sessions = TaskTracker::new();
    info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), starttls = shared.params.tls.is_some(), "SMTP listener bound");
    tasks.spawn(smtp::listen(
        listener,
        shared,
        Slots::new(
            settings.smtp.max_connections,
            settings.smtp.max_connections_per_ip,
        ),
        stop.clone(),
        sessions.clone(),
    ));

    info!(
        data_dir = %settings.general.data_dir.display(),
        key_id = keyring.current_id(),
        transport = %settings.outbound.transport,
        "sealpost is ready"
    );
    notify(&[NotifyState::Ready, NotifyState::Status("ready")]);
    let watchdog = tokio::spawn(watchdog());

    shutdown.await;
    info!("shutting down");
    notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    watchdog.abort();
    // Stop accepting and delivering; sessions in progress answer 421 at their next read, a
    // message being committed finishes first; then the database closes.
    stop.cancel();
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
        sessions.close();
        sessions.wait().await;
        store.close().await;
    })
    .await;
    if drained.is_err() {
        warn!(
            timeout_secs = DRAIN_TIMEOUT.as_secs(),
            "work in progress did not finish within the drain timeout"
        );
    }
    info!("stopped");
    Ok(())
}

/// Connections the kernel queues for the listener before it drops new ones (the kernel caps
/// it at `net.core.somaxconn`). A burst of connections beyond the queue costs every sender in
/// it a second (the SYN is retransmitted after one): room for a burst keeps well-behaved
/// senders from paying for a crowd's.
pub const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Sends keep-alives at half the watchdog interval systemd asked for, if it asked.
async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        notify(&[NotifyState::Watchdog]);
    }
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// A future that completes on SIGTERM or SIGINT. The handlers are installed by this call, not
/// when the future is first polled: a SIGTERM that arrives right after `READY=1` must start a
/// drain, not kill the process. Call it inside the runtime, before [`serve`].
pub fn termination() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("can install a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("can install a SIGINT handler");
    async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
