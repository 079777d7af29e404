//! What `bind` builds the daemon from: directories, the keyring, the pipeline, DKIM, the
//! doors' caps and budgets, listening sockets, and how it talks to systemd.

use super::AppError;
use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::{KeyError, Keyring};
use crate::domain::AuthPolicy;
use crate::inbound::auth::Checker;
use crate::inbound::pipeline::Pipeline;
use crate::inbound::smtp::session::SessionParams;
use crate::net::descriptors;
use crate::net::proxies::TrustedProxies;
use crate::net::slots::Slots;
use crate::outbound::compose::Identity;
use crate::outbound::dkim::{Dkim, DkimError};
use crate::store::Store;
use sd_notify::NotifyState;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

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
pub(super) fn dkim(settings: &Settings) -> Result<Option<Arc<Dkim>>, DkimError> {
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
pub(super) fn warn_about_auth(settings: &Settings) {
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

/// The connection caps of the three doors, as the process's descriptor limit allows (see
/// [`crate::net::descriptors`]).
pub(super) struct Caps {
    pub smtp: usize,
    pub web: usize,
    pub api: usize,
}

/// Raises the soft descriptor limit to the hard one, then fits the doors' caps into it with
/// the daemon's reserve beside them; says so when they had to be lowered.
pub(super) fn door_caps(settings: &Settings) -> Caps {
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
pub(super) fn door(
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
pub(super) fn session_params(
    smtp: &crate::config::Smtp,
    tls: Option<TlsAcceptor>,
) -> SessionParams {
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
pub(super) fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

pub(super) fn notify(states: &[NotifyState<'_>]) {
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
