//! Is the sender really the participant? SPF, DKIM and DMARC for inbound replies.
//!
//! A reply token proves that a message answers a notification; it says nothing about who
//! wrote it — anyone who saw the notification (a forward, a shared mailbox) has the address.
//! So a reply is filed only when its `From:` is the participant's address *and* the domain of
//! that address vouches for the message, as `auth.policy` requires (see [`Verdict::decide`]).
//!
//! Two ways to a [`Verdict`]:
//! - **Checked**: mail straight from the sender's server (the SMTP door). Sealpost checks SPF
//!   for the connecting address and `MAIL FROM`, every DKIM signature (up to
//!   [`MAX_DKIM_SIGNATURES`]) and the `From:` domain's DMARC policy, with the mail-auth crate
//!   over the configured resolvers. A DNS failure is a temporary failure, never a pass.
//! - **Relayed**: mail that passed the practice's own mail server first (the IMAP door; SMTP
//!   from `auth.trusted_relays`). That server checked; its `Authentication-Results` header is
//!   read, and only its (see [`results`]).

pub mod results;
pub mod verdict;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::system_conf::read_system_conf;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, SpfResult,
    dmarc::{Policy, verify::DmarcParameters},
    spf::verify::SpfParameters,
};
use tracing::warn;

pub use verdict::{AuthResult, Decision, Source, Verdict};

use crate::config::{self, Network};
use crate::domain::AuthPolicy;

/// DKIM signatures checked per message, at most: each costs a DNS query and a signature
/// verification, and a stranger can add as many as the header limit allows.
pub const MAX_DKIM_SIGNATURES: usize = 8;

/// Messages up to this size are parsed for DKIM on the async worker; larger ones tell the
/// runtime first that the worker will be busy for a while.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// Why authentication cannot be set up (a configuration or system problem, at start).
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error("cannot read the system's resolver configuration (/etc/resolv.conf): {0}")]
    SystemResolver(String),
    #[error("cannot set up the DNS resolver: {0}")]
    Resolver(String),
}

/// The SMTP client, as the SMTP door saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub ip: IpAddr,
    /// The name it gave in EHLO/HELO.
    pub helo: String,
}

/// Produces verdicts; shared by every session.
pub struct Checker {
    policy: AuthPolicy,
    /// `None` when the policy is off: nothing is ever looked up.
    resolver: Option<MessageAuthenticator>,
    trusted_ids: Vec<String>,
    trusted_relays: Vec<Network>,
    /// Our own name, for SPF's `%{r}` macro.
    hostname: String,
    /// How long a whole check may take (several queries, some in sequence).
    deadline: Duration,
}

impl Checker {
    /// A checker as the settings say; the resolver is made here, so a broken system resolver
    /// configuration stops the daemon at start, not at the first reply.
    pub fn new(auth: &config::Auth, hostname: &str) -> Result<Checker, AuthSetupError> {
        let timeout = Duration::from_secs(auth.dns_timeout_secs);
        let resolver = match auth.policy {
            AuthPolicy::Off => None,
            _ => Some(resolver(&auth.dns_servers, timeout)?),
        };
        Ok(Checker {
            policy: auth.policy,
            resolver,
            trusted_ids: auth.trusted_authserv_ids.clone(),
            trusted_relays: auth.trusted_relays.clone(),
            hostname: hostname.to_owned(),
            deadline: timeout * 4,
        })
    }

    /// A checker that checks nothing (`auth.policy = off`).
    pub fn off() -> Checker {
        Checker {
            policy: AuthPolicy::Off,
            resolver: None,
            trusted_ids: Vec::new(),
            trusted_relays: Vec::new(),
            hostname: String::new(),
            deadline: Duration::ZERO,
        }
    }

    pub fn policy(&self) -> AuthPolicy {
        self.policy
    }

    /// Whether `ip` is one of the practice's own relays (`auth.trusted_relays`): everyone's
    /// mail arrives from it.
    pub fn is_trusted_relay(&self, ip: std::net::IpAddr) -> bool {
        self.trusted_relays.iter().any(|n| n.contains(ip))
    }

    /// The verdict on one message. `peer` is the SMTP client (none for the IMAP door);
    /// `mail_from` the envelope sender (none for a null sender or when unknown).
    pub async fn verdict(
        &self,
        raw: &[u8],
        peer: Option<&Peer>,
        mail_from: Option<&str>,
    ) -> Verdict {
        let Some(resolver) = &self.resolver else {
            return Verdict::empty(Source::Unchecked);
        };
        match peer {
            Some(peer) if !self.trusted_relays.iter().any(|n| n.contains(peer.ip)) => {
                let check = self.check(resolver, raw, peer, mail_from);
                match tokio::time::timeout(self.deadline, check).await {
                    Ok(verdict) => verdict,
                    Err(_) => {
                        warn!(
                            seconds = self.deadline.as_secs(),
                            "sender authentication did not finish in time"
                        );
                        Verdict {
                            spf: AuthResult::TempError,
                            dkim: AuthResult::TempError,
                            dmarc: AuthResult::TempError,
                            ..Verdict::empty(Source::Checked)
                        }
                    }
                }
            }
            _ => results::trusted_verdict(results::header_fields(raw), &self.trusted_ids),
        }
    }

    /// SPF, DKIM and DMARC over DNS.
    async fn check(
        &self,
        resolver: &MessageAuthenticator,
        raw: &[u8],
        peer: &Peer,
        mail_from: Option<&str>,
    ) -> Verdict {
        let parse = || AuthenticatedMessage::parse(raw);
        let parsed = if raw.len() > INLINE_PARSE_BYTES
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread
        {
            tokio::task::block_in_place(parse)
        } else {
            parse()
        };
        let Some(mut message) = parsed else {
            return Verdict::empty(Source::Checked);
        };
        message.dkim_headers.truncate(MAX_DKIM_SIGNATURES);

        let helo = peer.helo.trim_end_matches('.');
        let sender = mail_from.unwrap_or("");
        let spf = if sender.is_empty() {
            resolver
                .verify_spf(SpfParameters::verify_ehlo(peer.ip, helo, &self.hostname))
                .await
        } else {
            resolver
                .verify_spf(SpfParameters::verify_mail_from(
                    peer.ip,
                    helo,
                    &self.hostname,
                    sender,
                ))
                .await
        };
        let dkim = resolver.verify_dkim(&message).await;
        let mail_from_domain = sender.rsplit_once('@').map_or(helo, |(_, d)| d);
        let dmarc = resolver
            .verify_dmarc(DmarcParameters::new(
                &message,
                &dkim,
                mail_from_domain,
                &spf,
            ))
            .await;

        let from_domain = match message.from.as_slice() {
            [only] => only.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()),
            _ => None,
        };
        let dkim_results: Vec<AuthResult> = dkim.iter().map(|o| dkim_result(o.result())).collect();
        Verdict {
            source: Source::Checked,
            from_domain,
            spf: spf_result(spf.result()),
            spf_domain: Some(spf.domain().to_ascii_lowercase()).filter(|d| !d.is_empty()),
            dkim: AuthResult::best(&dkim_results),
            dkim_domains: dkim
                .iter()
                .filter(|o| *o.result() == DkimResult::Pass)
                .filter_map(|o| o.signature().map(|s| s.d.to_ascii_lowercase()))
                .collect(),
            dmarc: dmarc_result(&dmarc.result()),
            dmarc_policy: dmarc.dmarc_record().map(|_| {
                match dmarc.policy() {
                    Policy::Reject => "reject",
                    Policy::Quarantine => "quarantine",
                    Policy::None | Policy::Unspecified => "none",
                }
                .to_owned()
            }),
        }
    }
}

/// The resolver: the configured servers (UDP, TCP when an answer is truncated), else the
/// system's. Answers are cached by hickory for their TTL.
fn resolver(
    servers: &[SocketAddr],
    timeout: Duration,
) -> Result<MessageAuthenticator, AuthSetupError> {
    let (config, mut opts) = if servers.is_empty() {
        read_system_conf().map_err(|e| AuthSetupError::SystemResolver(e.to_string()))?
    } else {
        let name_servers = servers
            .iter()
            .map(|addr| {
                let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                for c in &mut ns.connections {
                    c.port = addr.port();
                }
                ns
            })
            .collect();
        (
            ResolverConfig::from_parts(None, Vec::new(), name_servers),
            ResolverOpts::default(),
        )
    };
    opts.timeout = timeout;
    opts.attempts = 2;
    // Names in mail are looked up as they are, never through /etc/hosts or search domains.
    opts.use_hosts_file = ResolveHosts::Never;
    opts.ndots = 0;
    opts.cache_size = 4096;
    MessageAuthenticator::new(config, opts).map_err(|e| AuthSetupError::Resolver(e.to_string()))
}

fn spf_result(r: SpfResult) -> AuthResult {
    match r {
        SpfResult::Pass => AuthResult::Pass,
        SpfResult::Fail => AuthResult::Fail,
        SpfResult::SoftFail => AuthResult::SoftFail,
        SpfResult::Neutral => AuthResult::Neutral,
        SpfResult::TempError => AuthResult::TempError,
        SpfResult::PermError => AuthResult::PermError,
        SpfResult::None => AuthResult::None,
    }
}

fn dkim_result(r: &DkimResult) -> AuthResult {
    match r {
        DkimResult::Pass => AuthResult::Pass,
        DkimResult::Neutral(_) => AuthResult::Neutral,
        DkimResult::Fail(_) => AuthResult::Fail,
        DkimResult::PermError(_) => AuthResult::PermError,
        DkimResult::TempError(_) => AuthResult::TempError,
        DkimResult::None => AuthResult::None,
    }
}

fn dmarc_result(r: &DmarcResult) -> AuthResult {
    match r {
        DmarcResult::Pass => AuthResult::Pass,
        DmarcResult::Fail(_) => AuthResult::Fail,
        DmarcResult::TempError(_) => AuthResult::TempError,
        DmarcResult::PermError(_) => AuthResult::PermError,
        DmarcResult::None => AuthResult::None,
    }
}
