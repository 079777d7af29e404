//! Wiring and lifecycle: what `sealpost serve` opens, in which order, and how it stops.
//!
//! Start-up is fail-fast: every resource is opened before systemd is told `READY=1`, so a unit
//! that reports active really is able to work. Shutdown is bounded: after SIGTERM the daemon
//! says `STOPPING=1`, lets the work in hand finish for at most [`DRAIN_TIMEOUT`], and exits.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{KeyError, Keyring};
use crate::domain::AuthPolicy;
use crate::inbound::auth::{AuthSetupError, Checker};
use crate::inbound::imap::Poller;
use crate::inbound::pipeline::Pipeline;
use crate::inbound::smtp;
use crate::inbound::smtp::budget::DataBudget;
use crate::inbound::smtp::session::{SessionParams, Shared};
use crate::net::descriptors;
use crate::net::proxies::TrustedProxies;
use crate::net::slots::Slots;
use crate::outbound::compose::{Composer, Identity};
use crate::outbound::dkim::{Dkim, DkimError};
use crate::outbound::sms::{SmsSender, SmsSetupError};
use crate::outbound::templates::{TemplateError, Templates};
use crate::outbound::transport::{Transport, TransportError};
use crate::outbound::webhook::{WebhookPolicy, WebhookSender};
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

/// Creates a directory (and its parents) private to the service user.
pub fn ensure_dir(path: &Path) -> Result<(), AppError> {
    crate::files::ensure_private_dir(path).map_err(|source| AppError::Directory {
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
    Ok(Store::open(&settings.database.url, Arc::new(keyring), Clock::system()).await?)
}

/// The inbound pipeline as the configuration describes it; `wake` is told when something was
/// filed (the outbox has work).
pub fn pipeline(
    settings: &Settings,
    store: &Store,
    wake: Arc<Notify>,
    auth: Arc<Checker>,
) -> Pipeline {
    Pipeline::new(
        store.clone(),
        &settings.smtp.reply_domain,
        &settings.smtp.hostname,
        settings.policy.token_ttl_days,
        wake,
        auth,
    )
    .with_notice_limit(settings.policy.notices_per_hour)
    .with_held_limits(settings.held.limits())
    .with_boilerplate(
        [
            settings.general.organization.clone(),
            settings.outbound.convenience_notice.clone(),
            Identity::of(settings).recognition_sentence(),
        ]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect(),
    )
}

/// The DKIM key, when one is configured.
fn dkim(settings: &Settings) -> Result<Option<Arc<Dkim>>, DkimError> {
    let (Some(selector), Some(key)) = (
        &settings.outbound.dkim_selector,
        &settings.outbound.dkim_key,
    ) else {
        if settings.outbound.transport == crate::config::Transport::Smtp {
            warn!(
                "outbound.dkim_key is not set: notifications are not DKIM-signed, so receivers \
                 cannot tell them from forgeries (make a key with `sealpost dkim-keygen`)"
            );
        }
        return Ok(None);
    };
    let dkim = Dkim::load(key, &settings.dkim_domain(), selector)?;
    info!(
        domain = %dkim.domain,
        selector = %dkim.selector,
        algorithm = dkim.algorithm(),
        "notifications are DKIM-signed"
    );
    Ok(Some(Arc::new(dkim)))
}

/// Says at start what sender authentication will not do, where the settings leave a gap.
fn warn_about_auth(settings: &Settings) {
    let auth = &settings.auth;
    if auth.policy == AuthPolicy::Off {
        warn!(
            "auth.policy = off: reply senders are not authenticated; anyone who has seen a \
             reply address can write into its thread as the participant"
        );
        return;
    }
    if auth.trusted_authserv_ids.is_empty()
        && (settings.imap.enabled || !auth.trusted_relays.is_empty())
    {
        warn!(
            policy = auth.policy.as_str(),
            "auth.trusted_authserv_ids is empty: replies that come through a relay (the IMAP \
             door, auth.trusted_relays) carry no results Sealpost trusts and will be held"
        );
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
/// `127.0.0.1:0` and read the address back ([`App::smtp_addr`]).
pub struct App {
    store: Store,
    keyring: Arc<Keyring>,
    worker: Worker,
    webhooks: WebhookSender,
    sms: SmsSender,
    wake: Arc<Notify>,
    listener: TcpListener,
    shared: Arc<Shared>,
    slots: Arc<Slots>,
    poller: Option<Poller>,
    /// The API's listener and routes, when `api.enabled`.
    api: Option<ApiListener>,
    /// The web view's, when `web.enabled`.
    web: Option<ApiListener>,
    /// What `/readyz` answers: set once every part runs, cleared when draining starts.
    ready: Arc<AtomicBool>,
    summary: String,
}

/// An HTTP listener (the API's, the web view's): its socket, its budgets and TLS (see
/// [`crate::http::door`]), and its routes.
struct ApiListener {
    listener: TcpListener,
    door: crate::http::door::Door,
    router: axum::Router,
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
        let worker = Worker::new(
            store.clone(),
            composer.clone(),
            transport,
            RetryPolicy {
                base_secs: settings.outbound.retry_base_secs,
                max_attempts: settings.outbound.max_attempts,
                tls_fallback_after_secs: settings.outbound.tls_fallback_after,
            },
            wake.clone(),
        );
        let webhooks = WebhookSender::new(
            store.clone(),
            WebhookPolicy {
                retry_for_secs: i64::try_from(settings.webhooks.retry_for).unwrap_or(86_400),
                timeout: Duration::from_secs(settings.webhooks.timeout_secs),
            },
            settings.webhooks.ca_file.as_deref(),
            settings.webhooks.targets(),
            worker.owner(),
        )?;
        let sms = SmsSender::new(
            store.clone(),
            &settings.sms,
            &settings.general.organization,
            composer,
            Transport::new(&settings.outbound, &settings.smtp.hostname)?,
            worker.owner(),
        )?;
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
        let auth = Arc::new(Checker::new(&settings.auth, &settings.smtp.hostname)?);
        warn_about_auth(&settings);
        let pipeline = pipeline(&settings, &store, wake.clone(), auth);
        let poller = settings
            .imap
            .enabled
            .then(|| {
                Poller::new(
                    &settings.imap,
                    settings.smtp.max_message_bytes,
                    pipeline.clone(),
                    store.clone(),
                )
            })
            .transpose()
            .map_err(AppError::Imap)?;
        let api_tls = match (&settings.api.tls_cert, &settings.api.tls_key) {
            (Some(cert), Some(key)) if settings.api.enabled => {
                Some(crate::tls::server_config(cert, key).map_err(AppError::ApiTls)?)
            }
            _ => None,
        };
        if settings.api.enabled && api_tls.is_none() && !settings.api.listen.ip().is_loopback() {
            warn!(
                listen = %settings.api.listen,
                "api.allow_plaintext: the API serves plain HTTP beyond loopback; keys and \
                 personal data must reach it only through a TLS proxy"
            );
        }
        let ready = Arc::new(AtomicBool::new(false));
        let api = if settings.api.enabled {
            let listener = listen(settings.api.listen).map_err(|source| AppError::Listen {
                addr: settings.api.listen,
                source,
            })?;
            let state = crate::http::api::ApiState {
                store: store.clone(),
                wake: wake.clone(),
                default_mode: settings.policy.default_mode,
                max_body_bytes: settings.api.max_body_bytes,
                rate_limit: Arc::new(crate::http::rate_limit::RateLimit::new(
                    settings.api.requests_per_minute,
                )),
                webhook_targets: settings.webhooks.targets(),
                ready: ready.clone(),
            };
            Some(ApiListener {
                listener,
                door: door(
                    "api",
                    &settings,
                    caps.api,
                    settings.api.max_connections_per_ip,
                    settings.api.max_body_bytes,
                    api_tls,
                ),
                router: crate::http::api::router(state, settings.api.max_body_bytes),
            })
        } else {
            None
        };
        let web = if settings.web.enabled {
            let tls = match (&settings.web.tls_cert, &settings.web.tls_key) {
                (Some(cert), Some(key)) => {
                    Some(crate::tls::server_config(cert, key).map_err(AppError::WebTls)?)
                }
                _ => None,
            };
            if tls.is_none() && !settings.web.listen.ip().is_loopback() {
                warn!(
                    listen = %settings.web.listen,
                    "web.allow_plaintext: the web view serves plain HTTP beyond loopback; it must be reached only through a TLS proxy"
                );
            }
            let listener = listen(settings.web.listen).map_err(|source| AppError::Listen {
                addr: settings.web.listen,
                source,
            })?;
            let state = crate::http::web::WebState {
                store: store.clone(),
                keyring: keyring.clone(),
                wake: wake.clone(),
                organization: settings.general.organization.clone(),
                recognition_phrase: settings.general.recognition_phrase.clone(),
                contact: settings.general.contact.clone(),
                public_host: url::Url::parse(&settings.general.public_url)
                    .ok()
                    .and_then(|u| {
                        u.host_str().map(|h| match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_owned(),
                        })
                    })
                    .unwrap_or_default(),
                notice: settings.web.notice.clone(),
                billing_consent: settings.web.billing_consent,
                secure_cookies: settings.general.public_url.starts_with("https://"),
                verify: settings.web.verify,
                max_failures: settings.web.max_failures,
                session_idle: i64::try_from(settings.web.session_idle).unwrap_or(900),
                session_max: i64::try_from(settings.web.session_max).unwrap_or(43_200),
                token_ttl_days: settings.policy.token_ttl_days,
                code_after_secs: i64::from(settings.web.code_after_hours) * 3600,
                code_by_email: settings.sms.provider == crate::config::SmsProvider::Email,
                stylesheet: match &settings.web.stylesheet {
                    None => crate::http::web::STYLESHEET.into(),
                    Some(path) => std::fs::read_to_string(path)
                        .map_err(|source| AppError::Stylesheet {
                            path: path.clone(),
                            source,
                        })?
                        .into(),
                },
                per_address: Arc::new(crate::http::rate_limit::RateLimit::new(
                    settings.web.attempts_per_minute,
                )),
                per_person: Arc::new(crate::http::rate_limit::RateLimit::new(
                    settings.web.attempts_per_minute,
                )),
                proxies: TrustedProxies::new(settings.web.trusted_proxies.clone()),
                new_per_person: Arc::new(crate::http::rate_limit::RateLimit::per_hour(
                    settings.web.new_conversations_per_hour,
                )),
            };
            Some(ApiListener {
                listener,
                door: crate::http::door::Door {
                    proxies: TrustedProxies::new(settings.web.trusted_proxies.clone()),
                    ..door(
                        "web",
                        &settings,
                        caps.web,
                        settings.web.max_connections_per_ip,
                        crate::http::web::MAX_BODY_BYTES,
                        tls,
                    )
                },
                router: crate::http::web::router(state),
            })
        } else {
            None
        };
        let shared = Arc::new(Shared {
            params: session_params(&settings.smtp, tls),
            pipeline,
            budget: DataBudget::new(settings.smtp.max_inflight_bytes),
        });
        Ok(App {
            slots: Slots::new(caps.smtp, settings.smtp.max_connections_per_ip),
            summary: format!(
                "data_dir={} transport={} imap={}",
                settings.general.data_dir.display(),
                settings.outbound.transport,
                settings.imap.enabled
            ),
            store,
            keyring,
            worker,
            webhooks,
            sms,
            wake,
            listener,
            shared,
            poller,
            api,
            web,
            ready,
        })
    }

    /// Where the SMTP listener is bound.
    pub fn smtp_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Where the API listener is bound, when it is enabled.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api.as_ref().and_then(|a| a.listener.local_addr().ok())
    }

    /// The store the daemon runs on.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs until `shutdown` completes, then drains (bounded by [`DRAIN_TIMEOUT`]).
    ///
    /// Supervision: every part — the outbox worker, the SMTP listener, the IMAP poller, the
    /// store's writer thread — is watched. If one stops or panics while nobody asked it to,
    /// the daemon logs which and why, drains, and returns [`PartFailed`], so the process exits
    /// non-zero and systemd restarts it. The watchdog is told all is well only while every
    /// part is alive and no write has been stuck for the watchdog's interval.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
        let App {
            store,
            keyring,
            worker,
            webhooks,
            sms,
            wake: _wake,
            listener,
            shared,
            slots,
            poller,
            api,
            web,
            ready,
            summary,
        } = self;
        // With SQLite this is the only process delivering: claims left by a killed
        // predecessor are dead, and its notifications go out now rather than when the leases
        // expire.
        let released = store.release_claims(worker.owner()).await?;
        if released > 0 {
            info!(released, "released notifications claimed by a previous run");
        }
        let stop = CancellationToken::new();
        let sessions = TaskTracker::new();
        let mut parts: JoinSet<&'static str> = JoinSet::new();
        let s = stop.clone();
        parts.spawn(async move {
            worker.run(s).await;
            "the outbox worker"
        });
        let s = stop.clone();
        parts.spawn(async move {
            webhooks.run(s).await;
            "the webhook sender"
        });
        let s = stop.clone();
        parts.spawn(async move {
            sms.run(s).await;
            "the SMS sender"
        });
        if let Some(poller) = poller {
            let s = stop.clone();
            parts.spawn(async move {
                poller.run(s).await;
                "the IMAP poller"
            });
        }
        info!(listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), starttls = shared.params.tls.is_some(), "SMTP listener bound");
        let (s, t) = (stop.clone(), sessions.clone());
        parts.spawn(async move {
            smtp::listen(listener, shared, slots, s, t).await;
            "the SMTP listener"
        });

        for (listener, part) in [(api, "the API listener"), (web, "the web view listener")] {
            let Some(ApiListener {
                listener,
                door,
                router,
            }) = listener
            else {
                continue;
            };
            info!(
                door = door.name,
                listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
                tls = door.tls.is_some(),
                "HTTP listener bound"
            );
            let (s, t) = (stop.clone(), sessions.clone());
            parts.spawn(async move {
                crate::http::door::serve(door, listener, router, s, t).await;
                part
            });
        }
        ready.store(true, Ordering::Relaxed);
        info!(key_id = keyring.current_id(), %summary, "sealpost is ready");
        notify(&[NotifyState::Ready, NotifyState::Status("ready")]);
        let failed = supervise(&mut parts, &store, shutdown).await;

        ready.store(false, Ordering::Relaxed);
        info!("shutting down");
        notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
        // Stop accepting and delivering; sessions in progress answer 421 at their next read, a
        // message being committed finishes first; then the database closes.
        stop.cancel();
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while parts.join_next().await.is_some() {}
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

/// Waits for `shutdown` while watching the parts and telling systemd's watchdog (if it asked)
/// that all is well — only while it is. Returns the part that failed, if one did first.
async fn supervise(
    parts: &mut JoinSet<&'static str>,
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
            ended = parts.join_next() => {
                let (part, how) = match ended {
                    Some(Ok(part)) => (part, "returned"),
                    Some(Err(e)) if e.is_panic() => ("a part", "panicked"),
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

/// The connection caps of the three doors, as the process's descriptor limit allows (see
/// [`crate::net::descriptors`]).
struct Caps {
    smtp: usize,
    web: usize,
    api: usize,
}

/// Raises the soft descriptor limit to the hard one, then fits the doors' caps into it with
/// the daemon's reserve beside them; says so when they had to be lowered.
fn door_caps(settings: &Settings) -> Caps {
    let wanted = settings.door_caps();
    let limit = descriptors::raise_soft_limit();
    let fitted = descriptors::fit(&wanted, limit);
    if fitted != wanted {
        warn!(
            limit = limit.unwrap_or(0),
            smtp = fitted[0],
            web = fitted[1],
            api = fitted[2],
            "the file descriptor limit cannot hold every connection the caps allow beside the \
             daemon's own work: caps lowered in proportion (raise LimitNOFILE)"
        );
    }
    Caps {
        smtp: fitted[0],
        web: fitted[1],
        api: fitted[2],
    }
}

/// An HTTP door's budgets from the settings.
fn door(
    name: &'static str,
    settings: &Settings,
    max_connections: usize,
    max_per_ip: usize,
    max_body_bytes: usize,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> crate::http::door::Door {
    crate::http::door::Door {
        name,
        slots: Slots::new(max_connections, max_per_ip),
        proxies: TrustedProxies::default(),
        head_timeout: Duration::from_secs(settings.http.head_timeout_secs),
        min_body_rate: settings.http.min_body_rate,
        max_requests_in_flight: settings.http.max_requests_in_flight,
        max_body_bytes,
        tls,
    }
}

/// The SMTP sessions' limits, from the `smtp` section (and the TLS acceptor made from it).
fn session_params(smtp: &crate::config::Smtp, tls: Option<TlsAcceptor>) -> SessionParams {
    let bytes = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    SessionParams {
        hostname: smtp.hostname.clone(),
        max_message_bytes: bytes(smtp.max_message_bytes),
        max_report_bytes: bytes(smtp.max_report_bytes),
        max_recipients: smtp.max_recipients,
        max_errors: smtp.max_errors,
        ehlo_timeout: Duration::from_secs(smtp.ehlo_timeout_secs),
        command_timeout: Duration::from_secs(smtp.timeout_secs),
        min_data_rate: smtp.min_data_rate,
        data_grace: crate::inbound::smtp::session::DATA_GRACE,
        max_duration: Duration::from_secs(smtp.max_session_secs),
        tls,
    }
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
