//! Wiring and lifecycle: what `sealpost serve` opens, in which order, and how it stops.
//!
//! Start-up is fail-fast: every resource is opened before systemd is told `READY=1`, so a unit
//! that reports active really is able to work. Shutdown is bounded: after SIGTERM the daemon
//! says `STOPPING=1`, lets the work in hand finish for at most [`DRAIN_TIMEOUT`], and exits.

mod doors;
mod parts;
mod setup;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{KeyError, Keyring};
use crate::inbound::auth::{AuthSetupError, Checker};
use crate::inbound::imap::Poller;
use crate::inbound::smtp;
use crate::inbound::smtp::budget::DataBudget;
use crate::inbound::smtp::session::Shared;
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{self, Holder, HolderError};
use crate::net::slots::Slots;
use crate::outbound::compose::{Composer, Identity};
use crate::outbound::dkim::DkimError;
use crate::outbound::sms::{SmsSender, SmsSetupError};
use crate::outbound::templates::{TemplateError, Templates};
use crate::outbound::transport::{Transport, TransportError};
use crate::outbound::webhook::{WebhookPolicy, WebhookSender};
use crate::outbound::worker::{RetryPolicy, Worker};
use crate::store::{Store, StoreError};
use futures_util::FutureExt;
use parts::{Part, Running};
pub use setup::{
    LISTEN_BACKLOG, ensure_dir, load_or_create_keyring, open_store, pipeline, termination,
};
use setup::{dkim, door_caps, listen, notify, session_params, warn_about_auth};

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
    #[error("imap.ca_file: {0}")]
    Imap(crate::tls::TlsError),
    #[error("api.tls_cert / api.tls_key: {0}")]
    ApiTls(crate::tls::TlsError),
    #[error("web.tls_cert / web.tls_key: {0}")]
    WebTls(crate::tls::TlsError),
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
    #[error(transparent)]
    Failed(#[from] PartFailed),
    #[error(transparent)]
    Holder(#[from] HolderError),
    #[error(transparent)]
    Auth(#[from] AuthSetupError),
    #[error(transparent)]
    Dkim(#[from] DkimError),
    #[error(transparent)]
    Webhooks(#[from] crate::outbound::webhook::WebhookSetupError),
    #[error(transparent)]
    Sms(#[from] SmsSetupError),
    #[error("cannot read the stylesheet {path}: {source}")]
    Stylesheet {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

impl AppError {
    /// The configuration key to blame, when a value from the configuration cannot be used (an
    /// unreadable TLS key, password file or templates directory): such a failure is a
    /// configuration error (exit status 64), found while starting instead of while loading.
    pub fn config_key(&self) -> Option<&'static str> {
        match self {
            AppError::Tls(_) => Some("smtp.tls_cert / smtp.tls_key"),
            AppError::Template(_) => Some("outbound.templates_dir"),
            AppError::Transport(TransportError::Password { .. }) => {
                Some("outbound.smtp_password_file")
            }
            AppError::Transport(TransportError::Tls(_)) => Some("outbound.smtp_ca_file"),
            AppError::Transport(TransportError::Spool { .. }) => Some("outbound.spool_dir"),
            AppError::Imap(_) => Some("imap.ca_file"),
            AppError::ApiTls(_) => Some("api.tls_cert / api.tls_key"),
            AppError::WebTls(_) => Some("web.tls_cert / web.tls_key"),
            AppError::Auth(_) => Some("auth.dns_servers"),
            AppError::Dkim(_) => Some("outbound.dkim_key"),
            AppError::Webhooks(_) => Some("webhooks.ca_file"),
            AppError::Sms(SmsSetupError::Secret { key, .. }) => Some(key),
            AppError::Sms(SmsSetupError::WebhookSecret) => Some("sms.webhook_secret_file"),
            AppError::Sms(_) => Some("sms.provider"),
            AppError::Stylesheet { .. } => Some("web.stylesheet"),
            AppError::Key(KeyError::Permissions { .. } | KeyError::Malformed { .. }) => {
                Some("keys.path")
            }
            _ => None,
        }
    }
}

/// Runs the daemon until `shutdown` completes (or a part of it fails: see [`App::run`]).
pub async fn serve(settings: Settings, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
    App::bind(settings, Clock::system())
        .await?
        .run(shutdown)
        .await
}

/// The daemon, every resource open and every listener bound, not yet running: tests bind
/// `127.0.0.1:0` and read the addresses back ([`App::smtp_addr`]).
pub struct App {
    store: Store,
    keyring: Arc<Keyring>,
    /// This run of this instance: makes every claim and lease, and holds the data directory's
    /// lock while the daemon runs.
    holder: Holder,
    /// Every part, in the order they start.
    parts: Vec<Part>,
    smtp_addr: std::net::SocketAddr,
    api_addr: Option<std::net::SocketAddr>,
    /// What `/readyz` answers: set once every part runs, cleared when draining starts.
    ready: Arc<AtomicBool>,
    summary: String,
}

/// Why a running daemon stopped other than on request.
#[derive(Debug, thiserror::Error)]
#[error("{part} stopped unexpectedly ({how}); exiting so that systemd restarts the daemon")]
pub struct PartFailed {
    pub part: &'static str,
    pub how: &'static str,
}

impl App {
    /// Opens the store, loads the keyring and templates, builds the transport and binds the
    /// listeners — in that order, failing fast with the configuration key to blame where there
    /// is one (see [`AppError::config_key`]). Every part reads time from `clock` (through the
    /// store): the system's, or in tests one they move.
    pub async fn bind(settings: Settings, clock: Clock) -> Result<App, AppError> {
        ensure_dir(&settings.general.data_dir)?;
        let holder = Holder::of_data_dir(&settings.general.data_dir)?;
        crate::tls::install_default_provider();
        for w in settings.warnings() {
            warn!("{w}");
        }
        let caps = door_caps(&settings);
        let keyring = Arc::new(load_or_create_keyring(&settings.keys.path)?);
        let templates = Templates::load(settings.outbound.templates_dir.as_deref())?;
        templates.check(
            !settings.general.recognition_phrase.is_empty(),
            settings.outbound.secure_links,
        )?;
        let transport = Transport::new(&settings.outbound, &settings.smtp.hostname)?;
        let store = Store::open(&settings.database.url, keyring.clone(), clock).await?;
        let wake = Arc::new(Notify::new());
        let composer = Composer::new(Identity::of(&settings), templates, keyring.clone())
            .with_dkim(dkim(&settings)?);
        let mut parts = background(&settings, &store, &holder, &wake, composer, transport)?;
        let tls = match (&settings.smtp.tls_cert, &settings.smtp.tls_key) {
            (Some(cert), Some(key)) => {
                Some(TlsAcceptor::from(crate::tls::server_config(cert, key)?))
            }
            _ => None,
        };
        let listener = listen(settings.smtp.listen).map_err(|source| AppError::Listen {
            addr: settings.smtp.listen,
            source,
        })?;
        let smtp_addr = listener.local_addr().map_err(|source| AppError::Listen {
            addr: settings.smtp.listen,
            source,
        })?;
        let auth = Arc::new(Checker::new(&settings.auth, &settings.smtp.hostname)?);
        warn_about_auth(&settings);
        let pipeline = pipeline(&settings, &store, wake.clone(), auth);
        if settings.imap.enabled {
            let poller = Poller::new(
                &settings.imap,
                settings.smtp.max_message_bytes,
                pipeline.clone(),
                store.clone(),
            )
            .map_err(AppError::Imap)?;
            let holder = holder.clone();
            parts.push(Part::new("the IMAP poller", true, move |r| {
                poller.run(holder, r.stop)
            }));
        }
        let ready = Arc::new(AtomicBool::new(false));
        let api = doors::api(&settings, &caps, &store, &wake, &ready)?;
        let api_addr = api.as_ref().and_then(|a| a.listener.local_addr().ok());
        let web = doors::web(&settings, &caps, &store, &keyring, &wake)?;
        let shared = Arc::new(Shared {
            params: session_params(&settings.smtp, tls),
            pipeline,
            budget: DataBudget::new(settings.smtp.max_inflight_bytes),
        });
        let slots = Slots::new(caps.smtp, settings.smtp.max_connections_per_ip);
        info!(listen = %smtp_addr, starttls = shared.params.tls.is_some(), "SMTP listener bound");
        parts.push(Part::new("the SMTP listener", true, move |r| {
            smtp::listen(listener, shared, slots, r.stop, r.sessions)
        }));
        for (door, name) in [(api, "the API listener"), (web, "the web view listener")] {
            if let Some(d) = door {
                parts.push(http_part(name, d));
            }
        }
        Ok(App {
            summary: format!(
                "data_dir={} transport={} imap={}",
                settings.general.data_dir.display(),
                settings.outbound.transport,
                settings.imap.enabled
            ),
            store,
            keyring,
            holder,
            parts,
            smtp_addr,
            api_addr,
            ready,
        })
    }

    /// Where the SMTP listener is bound.
    pub fn smtp_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        Ok(self.smtp_addr)
    }

    /// Where the API listener is bound, when it is enabled.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api_addr
    }

    /// The store the daemon runs on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` completes, then drains (bounded by [`DRAIN_TIMEOUT`]).
    ///
    /// Supervision: every part (see [`parts`]) and the store's writer thread are watched. If
    /// a critical part stops or panics while nobody asked it to, the daemon logs which and
    /// why, drains, and returns [`PartFailed`], so the process exits non-zero and systemd
    /// restarts it. The watchdog is told all is well only while every critical part is alive
    /// and no write has been stuck for the watchdog's interval.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
        let App {
            store,
            keyring,
            holder,
            parts,
            ready,
            summary,
            ..
        } = self;
        // What an earlier run of this instance held is dead (this process holds the
        // instance's lock): its notifications go out now, not when its claims run out.
        let taken = store.take_back(&holder.instance_prefix()).await?;
        if taken > 0 {
            info!(taken, "took back work claimed by a previous run");
        }
        let stop = CancellationToken::new();
        let sessions = TaskTracker::new();
        let mut running: JoinSet<Ended> = JoinSet::new();
        for part in parts {
            let (name, critical) = (part.name, part.critical);
            let work = part.start(Running {
                stop: stop.clone(),
                sessions: sessions.clone(),
            });
            running.spawn(async move {
                let how = match std::panic::AssertUnwindSafe(work).catch_unwind().await {
                    Ok(()) => "returned",
                    Err(_) => "panicked",
                };
                Ended {
                    part: name,
                    critical,
                    how,
                }
            });
        }
        ready.store(true, Ordering::Relaxed);
        info!(key_id = keyring.current_id(), %summary, "sealpost is ready");
        notify(&[NotifyState::Ready, NotifyState::Status("ready")]);
        let failed = supervise(&mut running, &store, shutdown).await;

        ready.store(false, Ordering::Relaxed);
        info!("shutting down");
        notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
        // Stop accepting and delivering; sessions in progress answer 421 at their next read, a
        // message being committed finishes first; then the database closes.
        stop.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while running.join_next().await.is_some() {}
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
        drop(holder);
        match failed {
            Some(f) => {
                error!(part = f.part, how = f.how, "stopped because a part failed");
                Err(AppError::Failed(f))
            }
            None => {
                info!("stopped");
                Ok(())
            }
        }
    }
}

/// The background parts: the queues' workers (outbox, webhooks, text messages, scheduled
/// jobs), each run by the job queue's runner with this instance's holder.
fn background(
    settings: &Settings,
    store: &Store,
    holder: &Holder,
    wake: &Arc<Notify>,
    composer: Composer,
    transport: Transport,
) -> Result<Vec<Part>, AppError> {
    let worker = Worker::new(
        store.clone(),
        composer.clone(),
        transport,
        RetryPolicy {
            base_secs: settings.outbound.retry_base_secs,
            max_attempts: settings.outbound.max_attempts,
            tls_fallback_after_secs: settings.outbound.tls_fallback_after,
        },
    );
    let webhooks = WebhookSender::new(
        store.clone(),
        WebhookPolicy {
            retry_for_secs: i64::try_from(settings.webhooks.retry_for).unwrap_or(86_400),
            timeout: Duration::from_secs(settings.webhooks.timeout_secs),
        },
        settings.webhooks.ca_file.as_deref(),
        settings.webhooks.targets(),
    )?;
    let sms = SmsSender::new(
        store.clone(),
        &settings.sms,
        &settings.general.organization,
        composer,
        Transport::new(&settings.outbound, &settings.smtp.hostname)?,
    )?;
    let scheduler = Scheduler::new(
        store.clone(),
        i64::try_from(settings.web.session_max).unwrap_or(43_200),
    );
    let queue = |name| (name, store, holder);
    Ok(vec![
        queue_part(queue("the outbox worker"), worker, Some(wake.clone())),
        queue_part(queue("the webhook sender"), webhooks, None),
        queue_part(queue("the SMS sender"), sms, None),
        {
            let (store, holder) = (store.clone(), holder.clone());
            // Housekeeping is not what the daemon is for: if its runner stops, mail still
            // flows.
            Part::new("the scheduler", false, move |r: Running| async move {
                if let Err(e) = scheduler.plan().await {
                    warn!(error = %e, "cannot queue the scheduled jobs; trying again at the next start");
                }
                jobs::run(scheduler, store, holder, None, r.stop).await;
            })
        },
    ])
}

/// A critical part that drains one queue; `wake` is notified when this process queues work.
fn queue_part<W: jobs::Work + 'static>(
    (name, store, holder): (&'static str, &Store, &Holder),
    work: W,
    wake: Option<Arc<Notify>>,
) -> Part {
    let (store, holder) = (store.clone(), holder.clone());
    Part::new(name, true, move |r: Running| {
        jobs::run(work, store, holder, wake, r.stop)
    })
}

/// A part that serves one HTTP door.
fn http_part(name: &'static str, d: doors::ApiListener) -> Part {
    let doors::ApiListener {
        listener,
        door,
        router,
    } = d;
    info!(
        door = door.name,
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        tls = door.tls.is_some(),
        "HTTP listener bound"
    );
    Part::new(name, true, move |r: Running| {
        crate::http::door::serve(door, listener, router, r.stop, r.sessions)
    })
}

/// Waits for `shutdown` while watching the parts and telling systemd's watchdog (if it asked)
/// that all is well — only while it is. Returns the part that failed, if one did first.
/// A part that stopped: which, whether the daemon needs it, and how it stopped.
struct Ended {
    part: &'static str,
    critical: bool,
    how: &'static str,
}

async fn supervise(
    parts: &mut JoinSet<Ended>,
    store: &Store,
    shutdown: impl Future<Output = ()>,
) -> Option<PartFailed> {
    let interval = sd_notify::watchdog_enabled();
    // Checks (and keep-alives) at half the watchdog interval, else every second.
    let mut tick = tokio::time::interval(interval.map_or(Duration::from_secs(1), |i| i / 2));
    // A write may take this long before the daemon counts as stuck.
    let stuck_after = interval.unwrap_or(Duration::from_secs(60));
    let mut reported_stuck = false;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return None,
            ended = parts.join_next(), if !parts.is_empty() => {
                let (part, how) = match ended {
                    Some(Ok(Ended { part, critical: false, how })) => {
                        error!(part, how, "a part of the daemon that it can do without stopped; carrying on");
                        continue;
                    }
                    Some(Ok(Ended { part, how, .. })) => (part, how),
                    Some(Err(_)) => ("a part", "was cancelled"),
                    None => ("every part", "returned"),
                };
                error!(part, how, "a part of the daemon stopped unexpectedly");
                return Some(PartFailed { part, how });
            }
            _ = tick.tick() => {
                if !store.writer_running() {
                    error!("the store's writer thread stopped");
                    return Some(PartFailed { part: "the store's writer", how: "stopped" });
                }
                if store.writer_alive(stuck_after) {
                    reported_stuck = false;
                    if interval.is_some() {
                        notify(&[NotifyState::Watchdog]);
                    }
                } else if !reported_stuck {
                    reported_stuck = true;
                    warn!(stuck_secs = stuck_after.as_secs(), "a database write is stuck; not telling the watchdog all is well");
                }
            }
        }
    }
}
