//! Typed settings: one TOML file, overridable key by key from the environment.
//!
//! Every setting has a name `section.key`. The file sets it as `[section] key = value`, the
//! environment as `SEALPOST_<SECTION>__<KEY>`. The config crate layers them over the built-in
//! defaults and serde deserialises the result into the typed sections below; each field names
//! its reader in [`de`], which takes a TOML value and the environment's text alike, so a bad
//! value is reported the same way wherever it came from: one line naming the key and its origin.
//! A new setting is a field with a default: nothing else to extend.
//! Unknown keys are errors, not warnings: a misspelt `smtp.max_mesage_bytes` silently ignored is
//! a limit the admin believes in and does not have.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::domain::kinds::vocabulary;
use crate::domain::{AuthPolicy, Mailbox, Mode};

pub use crate::domain::network::Network;

mod de;
mod held;
mod http;

pub use held::Held;
pub use http::Http;

/// Where the configuration file is looked for when neither `--config` nor `$SEALPOST_CONFIG`
/// names one.
pub const SYSTEM_CONFIG: &str = "/etc/sealpost/sealpost.toml";
/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "SEALPOST_CONFIG";
const ENV_PREFIX: &str = "SEALPOST_";

vocabulary!(
    /// How the IMAP connection is protected.
    ImapTls {
        Implicit => "implicit",
        Starttls => "starttls",
        None => "none",
    }
);

vocabulary!(
    /// How the outbound relay connection is protected.
    SmtpTls {
        Starttls => "starttls",
        Implicit => "implicit",
        None => "none",
    }
);

vocabulary!(
    /// Where notifications go.
    Transport {
        Spool => "spool",
        Smtp => "smtp",
    }
);

/// All settings, after defaults, the file and the environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub general: General,
    pub database: Database,
    pub keys: Keys,
    pub smtp: Smtp,
    pub imap: Imap,
    pub outbound: Outbound,
    pub policy: Policy,
    pub auth: Auth,
    pub api: Api,
    pub webhooks: Webhooks,
    pub web: Web,
    pub http: Http,
    pub held: Held,
    pub sms: Sms,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct General {
    /// Where SQLite, the spool and (by default) the keyring live.
    #[serde(deserialize_with = "de::path")]
    pub data_dir: PathBuf,
    /// The practice's name, shown in notifications.
    #[serde(deserialize_with = "de::trimmed")]
    pub organization: String,
    /// Base of the links in notifications (`<public_url>/m/<token>`), without a trailing slash.
    #[serde(deserialize_with = "de::url")]
    pub public_url: String,
    /// A phrase every notification (and the web view) shows, so recipients can tell the
    /// practice's mail from phishing; empty: none.
    #[serde(deserialize_with = "de::phrase")]
    pub recognition_phrase: String,
    /// How people reach the practice other than through Sealpost (a phone number and opening
    /// hours, say): told to someone whose email could not be added to a conversation. Empty:
    /// they are told to contact the practice directly.
    #[serde(deserialize_with = "de::trimmed")]
    pub contact: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    #[serde(deserialize_with = "de::trimmed")]
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    #[serde(deserialize_with = "de::path")]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smtp {
    #[serde(deserialize_with = "de::listen_address")]
    pub listen: SocketAddr,
    #[serde(deserialize_with = "de::lower")]
    pub hostname: String,
    #[serde(deserialize_with = "de::lower")]
    pub reply_domain: String,
    #[serde(deserialize_with = "de::number")]
    pub max_message_bytes: u64,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_key: Option<PathBuf>,
    /// Sessions served at once. When all are taken, the longest-idle session makes room for a
    /// new one; if none is idle, the new one is answered 421.
    #[serde(deserialize_with = "de::number")]
    pub max_connections: usize,
    /// Sessions from one IP address at once (behind a relay, every session comes from the
    /// relay: allow it as many as it opens).
    #[serde(deserialize_with = "de::number")]
    pub max_connections_per_ip: usize,
    /// Recipients accepted in one transaction.
    #[serde(deserialize_with = "de::number")]
    pub max_recipients: usize,
    /// Failed commands (including refused recipients) before a session is closed.
    #[serde(deserialize_with = "de::number")]
    pub max_errors: u32,
    /// How long a client may take from the greeting to its first EHLO/HELO.
    #[serde(deserialize_with = "de::number")]
    pub ehlo_timeout_secs: u64,
    /// How long a client may take for each whole command after the previous reply (trickling
    /// a byte at a time does not extend it), and the longest pause while sending a message.
    #[serde(deserialize_with = "de::number")]
    pub timeout_secs: u64,
    /// Bytes per second a message must keep arriving at (after 30 seconds' grace).
    #[serde(deserialize_with = "de::number")]
    pub min_data_rate: u64,
    /// How long one session may last.
    #[serde(deserialize_with = "de::number")]
    pub max_session_secs: u64,
    /// Message bytes all sessions together may hold in memory; a session over it gets 452.
    #[serde(deserialize_with = "de::number")]
    pub max_inflight_bytes: u64,
    /// Size limit for mail addressed only to postmaster or bounce addresses (reports, never
    /// replies); `max_message_bytes` when that is smaller.
    #[serde(deserialize_with = "de::number")]
    pub max_report_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Imap {
    #[serde(deserialize_with = "de::boolean")]
    pub enabled: bool,
    #[serde(deserialize_with = "de::trimmed")]
    pub host: String,
    #[serde(deserialize_with = "de::number")]
    pub port: u16,
    #[serde(deserialize_with = "de::word")]
    pub tls: ImapTls,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub ca_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::verbatim")]
    pub username: String,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub password_file: Option<PathBuf>,
    #[serde(deserialize_with = "de::trimmed")]
    pub mailbox: String,
    #[serde(deserialize_with = "de::trimmed")]
    pub processed_mailbox: String,
    #[serde(deserialize_with = "de::trimmed")]
    pub rejected_mailbox: String,
    #[serde(deserialize_with = "de::number")]
    pub poll_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outbound {
    #[serde(deserialize_with = "de::word")]
    pub transport: Transport,
    #[serde(deserialize_with = "de::path")]
    pub spool_dir: PathBuf,
    #[serde(deserialize_with = "de::parsed")]
    pub from: Mailbox,
    #[serde(deserialize_with = "de::trimmed")]
    pub smtp_host: String,
    #[serde(deserialize_with = "de::number")]
    pub smtp_port: u16,
    #[serde(deserialize_with = "de::word")]
    pub smtp_tls: SmtpTls,
    #[serde(default, deserialize_with = "de::optional_text")]
    pub smtp_username: Option<String>,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub smtp_password_file: Option<PathBuf>,
    /// An extra CA to trust for the relay's certificate (besides the system's roots).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Limit for connecting and for each SMTP command to the relay.
    #[serde(deserialize_with = "de::number")]
    pub smtp_timeout_secs: u64,
    /// First retry delay after a temporary failure; doubles with each attempt (with jitter).
    #[serde(deserialize_with = "de::number")]
    pub retry_base_secs: u64,
    /// After this many attempts a notification is marked failed.
    #[serde(deserialize_with = "de::number")]
    pub max_attempts: u32,
    /// A directory with templates that replace the built-in ones (same file names).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub templates_dir: Option<PathBuf>,
    /// The line in convenience notifications saying email is not end-to-end protected.
    #[serde(deserialize_with = "de::trimmed")]
    pub convenience_notice: String,
    /// Notifications carry a link to the message; `false` for practices that teach their
    /// patients never to click links in mail ("sign in at the portal as usual").
    #[serde(deserialize_with = "de::boolean")]
    pub secure_links: bool,
    /// The DKIM selector: the key is published at `<selector>._domainkey.<dkim domain>`.
    #[serde(default, deserialize_with = "de::optional_lower")]
    pub dkim_selector: Option<String>,
    /// The DKIM private key (PEM; Ed25519, or RSA of 2048 bits or more).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub dkim_key: Option<PathBuf>,
    /// The signing domain (`d=`); the domain of `outbound.from` when not set, so that DMARC
    /// aligns.
    #[serde(default, deserialize_with = "de::optional_lower")]
    pub dkim_domain: Option<String>,
    /// How long a convenience notification waits for TLS to the relay before it is sent as a
    /// secure (content-free) notification instead, in seconds (the file takes "1h", "30m").
    #[serde(deserialize_with = "de::duration")]
    pub tls_fallback_after: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(deserialize_with = "de::word")]
    pub default_mode: Mode,
    #[serde(deserialize_with = "de::number")]
    pub token_ttl_days: u32,
    /// Content-free notices one person gets at most an hour about their own mail (a reply
    /// held, a conversation that takes no email); those over it are recorded as suppressed.
    #[serde(deserialize_with = "de::number")]
    pub notices_per_hour: u32,
}

/// Sender authentication of inbound replies (see `inbound::auth`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    #[serde(deserialize_with = "de::word")]
    pub policy: AuthPolicy,
    /// Resolvers asked for SPF, DKIM and DMARC records, as `IP` or `IP:port`; empty means the
    /// system's (`/etc/resolv.conf`).
    #[serde(default, deserialize_with = "de::resolvers")]
    pub dns_servers: Vec<SocketAddr>,
    /// How long one DNS query may take; a whole check gets a few of these.
    #[serde(deserialize_with = "de::number")]
    pub dns_timeout_secs: u64,
    /// The `authserv-id`s whose `Authentication-Results` headers are believed: the names of
    /// the practice's own mail servers that checked the message before Sealpost saw it (the
    /// IMAP door, and SMTP from `trusted_relays`). Everyone else's are ignored.
    #[serde(default, deserialize_with = "de::lower_list")]
    pub trusted_authserv_ids: Vec<String>,
    /// SMTP clients (addresses or networks) that are the practice's own relays: their
    /// `Authentication-Results` are used instead of checking SPF against the relay's address.
    #[serde(default, deserialize_with = "de::parsed_list")]
    pub trusted_relays: Vec<Network>,
}

/// The HTTP API for the practice's own systems (`/v1`, `/healthz`, `/readyz`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Api {
    /// Whether `sealpost serve` serves it.
    #[serde(deserialize_with = "de::boolean")]
    pub enabled: bool,
    #[serde(deserialize_with = "de::listen_address")]
    pub listen: SocketAddr,
    /// Serve plain HTTP on an address other than loopback (behind a TLS proxy on the same
    /// network); refused otherwise, since API keys and personal data would cross the network
    /// in clear.
    #[serde(deserialize_with = "de::boolean")]
    pub allow_plaintext: bool,
    /// Largest request body accepted (413 above it).
    #[serde(deserialize_with = "de::number")]
    pub max_body_bytes: usize,
    /// Requests one API key may make per minute (a burst of as many, then that rate); over
    /// it, 429 with Retry-After. 0: no limit.
    #[serde(deserialize_with = "de::number")]
    pub requests_per_minute: u32,
    /// A certificate chain (PEM) to serve the API over TLS with, and its key: needed for a
    /// listener beyond loopback unless `allow_plaintext` says a proxy terminates TLS.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_key: Option<PathBuf>,
    /// Connections the API holds at once (see `[http]` for their deadlines).
    #[serde(deserialize_with = "de::number")]
    pub max_connections: usize,
    /// Connections from one address at once (a portal behind one proxy counts as one
    /// address: raise it to what the portal opens).
    #[serde(deserialize_with = "de::number")]
    pub max_connections_per_ip: usize,
}

/// The secure web view: where the link in a secure notification leads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Web {
    /// Whether `sealpost serve` serves it.
    #[serde(deserialize_with = "de::boolean")]
    pub enabled: bool,
    #[serde(deserialize_with = "de::listen_address")]
    pub listen: SocketAddr,
    /// A certificate chain and key (PEM) to terminate TLS with; normally a reverse proxy does.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_cert: Option<PathBuf>,
    #[serde(default, deserialize_with = "de::optional_path")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (a TLS proxy on the same network).
    #[serde(deserialize_with = "de::boolean")]
    pub allow_plaintext: bool,
    /// How a recipient proves who they are: `dob` (date of birth from the directory),
    /// `dob+lastname` (and their last name), or `passcode` (one staff set with `sealpost person
    /// passcode`).
    #[serde(deserialize_with = "de::word")]
    pub verify: WebVerify,
    /// Failed checks in a row before the person is locked out (staff are told).
    #[serde(deserialize_with = "de::number")]
    pub max_failures: u32,
    /// A signed-in page unused this long signs the person out, in seconds ("15m").
    #[serde(deserialize_with = "de::duration")]
    pub session_idle: u64,
    /// However active, a session ends this long after sign-in, in seconds ("12h").
    #[serde(deserialize_with = "de::duration")]
    pub session_max: u64,
    /// Sign-in attempts per minute from one address, and for one person.
    #[serde(deserialize_with = "de::number")]
    pub attempts_per_minute: u32,
    /// New conversations one person may open from the web view in an hour (each notifies
    /// staff). 0: no limit.
    #[serde(deserialize_with = "de::number")]
    pub new_conversations_per_hour: u32,
    /// Shown above every conversation.
    #[serde(deserialize_with = "de::trimmed")]
    pub notice: String,
    /// A new message from a recipient needs their agreement that answering it may be billed.
    #[serde(deserialize_with = "de::boolean")]
    pub billing_consent: bool,
    /// A stylesheet of the practice's own, served instead of the built-in one (read at
    /// start). Pages allow no other stylesheet, script or remote asset.
    #[serde(default, deserialize_with = "de::optional_path")]
    pub stylesheet: Option<PathBuf>,
    /// A link opened more than this many hours after it was sent (or after a newer link went
    /// to the same person) asks first for the person's mobile number and a code sent to it
    /// (`[sms]`). 0: never.
    #[serde(deserialize_with = "de::number")]
    pub code_after_hours: u32,
    /// Connections the web view holds at once; when all are taken, an idle one from the most
    /// crowded address makes room for a newcomer.
    #[serde(deserialize_with = "de::number")]
    pub max_connections: usize,
    /// Connections from one client address at once (a trusted proxy has no such cap).
    #[serde(deserialize_with = "de::number")]
    pub max_connections_per_ip: usize,
    /// Reverse proxies in front of the web view (addresses or networks, e.g. "127.0.0.1"):
    /// only from these is `X-Forwarded-For` read, right to left, to find the client's address
    /// for the rate limits. Empty: the header is ignored.
    #[serde(default, deserialize_with = "de::parsed_list")]
    pub trusted_proxies: Vec<Network>,
}

/// How the codes of the web view's 24-hour rule reach people.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sms {
    /// `twilio`, `webhook` (a signed JSON POST to your own gateway), or `email` (the code goes
    /// to the person's address, for practices without SMS).
    #[serde(deserialize_with = "de::word")]
    pub provider: SmsProvider,
    /// Twilio's API root (tests point it elsewhere).
    #[serde(deserialize_with = "de::url")]
    pub twilio_base_url: String,
    #[serde(deserialize_with = "de::trimmed")]
    pub twilio_account_sid: String,
    /// A file holding the account's auth token (the token never goes in this file).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub twilio_auth_token_file: Option<PathBuf>,
    /// The sending number (E.164) or a Messaging Service SID (`MG…`).
    #[serde(deserialize_with = "de::trimmed")]
    pub twilio_from: String,
    /// Where the `webhook` provider POSTs `{"to", "body", "id"}`.
    #[serde(deserialize_with = "de::url")]
    pub webhook_url: String,
    /// A file holding the webhook's signing secret, `whsec_<base64>` (Standard Webhooks).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub webhook_secret_file: Option<PathBuf>,
    /// How long one attempt may take, in seconds.
    #[serde(deserialize_with = "de::number")]
    pub timeout_secs: u64,
}

crate::domain::kinds::vocabulary!(
    /// Where a code of the 24-hour rule is sent.
    SmsProvider {
        /// Twilio's Messages API (a form POST with basic auth).
        Twilio => "twilio",
        /// A signed JSON POST to a gateway of the practice's.
        Webhook => "webhook",
        /// An email to the person's address.
        Email => "email",
    }
);

crate::domain::kinds::vocabulary!(
    /// What the web view asks for before it shows anything.
    WebVerify {
        /// The date of birth on file.
        Dob => "dob",
        /// The date of birth and the last name on file.
        DobLastname => "dob+lastname",
        /// A passcode staff gave the person (kept as an Argon2id hash).
        Passcode => "passcode",
    }
);

/// Deliveries of webhooks to the practice's systems (subscriptions are made with `sealpost
/// webhook add` or the API).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// How long a delivery that keeps failing is retried before it is marked failed, in
    /// seconds (the file takes "24h").
    #[serde(deserialize_with = "de::duration")]
    pub retry_for: u64,
    /// How long one attempt may take (connect, send, answer), in seconds.
    #[serde(deserialize_with = "de::number")]
    pub timeout_secs: u64,
    /// Accept `http://` URLs that are not loopback. Payloads carry only ids, but anyone on the
    /// path would learn them and could replay a delivery within its timestamp tolerance.
    #[serde(deserialize_with = "de::boolean")]
    pub allow_plaintext: bool,
    /// Certificates (PEM) to trust for receivers, besides the system's (a private CA).
    #[serde(default, deserialize_with = "de::optional_path")]
    pub ca_file: Option<PathBuf>,
    /// Addresses or networks that are not public (loopback, private, link-local) that
    /// webhooks may reach all the same: a receiver on this machine or the practice's network.
    /// Empty: only public addresses, checked again for every address a name resolves to.
    #[serde(default, deserialize_with = "de::parsed_list")]
    pub allow_private: Vec<Network>,
}

impl Webhooks {
    /// Where subscriptions may send to.
    pub fn targets(&self) -> crate::domain::webhook::Targets {
        crate::domain::webhook::Targets {
            allow_plaintext: self.allow_plaintext,
            allow_private: self.allow_private.clone(),
        }
    }
}

/// Where a setting's value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
        }
    }
}

/// An invalid configuration: which key, from where, and what is wrong. Commands exit with 64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message} (from {origin})")]
pub struct ConfigError {
    pub key: String,
    pub origin: Origin,
    pub message: String,
}

/// The process environment as the loader sees it: a list of variables.
pub type Env = Vec<(String, String)>;

/// Settings together with the file they were read from, if any.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub settings: Settings,
    pub file: Option<PathBuf>,
}

/// Finds and reads the configuration: `--config`, else `$SEALPOST_CONFIG`, else
/// [`SYSTEM_CONFIG`] when it exists, else built-in defaults; then the environment on top.
pub fn load(cli_path: Option<&Path>) -> Result<Loaded, ConfigError> {
    let env: Env = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect();
    let chosen = match cli_path {
        Some(p) => Some((p.to_owned(), Origin::Default)),
        None => env
            .iter()
            .find(|(k, _)| k == CONFIG_ENV)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (PathBuf::from(v), Origin::Env(k.clone())))
            .or_else(|| {
                Path::new(SYSTEM_CONFIG)
                    .exists()
                    .then(|| (PathBuf::from(SYSTEM_CONFIG), Origin::Default))
            }),
    };
    let file = match chosen {
        Some((path, origin)) => {
            let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
                key: "configuration file".into(),
                origin: match origin {
                    Origin::Env(v) => Origin::Env(v),
                    _ => Origin::File(path.clone()),
                },
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            Some((path, text))
        }
        None => None,
    };
    let settings =
        Settings::from_sources(file.as_ref().map(|(p, t)| (p.as_path(), t.as_str())), &env)?;
    Ok(Loaded {
        settings,
        file: file.map(|(p, _)| p),
    })
}

impl Settings {
    /// Built-in defaults; `env` supplies systemd's `STATE_DIRECTORY`, when running under it.
    fn defaults(env: &Env) -> Settings {
        let data_dir = lookup(env, "STATE_DIRECTORY")
            .and_then(|v| v.split(':').next().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./data"));
        Settings {
            general: General {
                data_dir,
                organization: "Sealpost".into(),
                public_url: "http://localhost:8080".into(),
                recognition_phrase: String::new(),
                contact: String::new(),
            },
            // Derived from data_dir after loading, unless set (the placeholders must read
            // back as valid values).
            database: Database {
                url: "sqlite://./data/sealpost.db".into(),
            },
            keys: Keys {
                path: PathBuf::from("./data/keyring.json"),
            },
            smtp: Smtp {
                listen: "127.0.0.1:2525".parse().expect("valid literal"),
                hostname: "localhost".into(),
                reply_domain: "localhost".into(),
                // A reply is text; 10 MiB leaves room for a photo or two in it.
                max_message_bytes: 10 * 1024 * 1024,
                tls_cert: None,
                tls_key: None,
                max_connections: 200,
                max_connections_per_ip: 20,
                max_recipients: 20,
                max_errors: 10,
                ehlo_timeout_secs: 60,
                timeout_secs: 300,
                min_data_rate: 1024,
                max_session_secs: 1800,
                max_inflight_bytes: 128 * 1024 * 1024,
                // Postfix returns at most 50 kB of the original in a bounce, Exim 100 kB.
                max_report_bytes: 256 * 1024,
            },
            imap: Imap {
                enabled: false,
                host: String::new(),
                port: 993,
                tls: ImapTls::Implicit,
                ca_file: None,
                username: String::new(),
                password_file: None,
                mailbox: "INBOX".into(),
                processed_mailbox: "Sealpost/Processed".into(),
                rejected_mailbox: "Sealpost/Rejected".into(),
                poll_interval_secs: 60,
            },
            outbound: Outbound {
                transport: Transport::Spool,
                spool_dir: PathBuf::from("./data/spool"),
                from: "Sealpost <sealpost@localhost>"
                    .parse()
                    .expect("valid literal"),
                smtp_host: String::new(),
                smtp_port: 587,
                smtp_tls: SmtpTls::Starttls,
                smtp_username: None,
                smtp_password_file: None,
                smtp_ca_file: None,
                smtp_timeout_secs: 30,
                retry_base_secs: 60,
                max_attempts: 12,
                templates_dir: None,
                convenience_notice:
                    "This conversation continues by ordinary email for your convenience; \
                    email is not end-to-end protected."
                        .into(),
                secure_links: true,
                dkim_selector: None,
                dkim_key: None,
                dkim_domain: None,
                tls_fallback_after: 3600,
            },
            policy: Policy {
                default_mode: Mode::Secure,
                token_ttl_days: 30,
                notices_per_hour: crate::domain::notice::DEFAULT_PER_HOUR,
            },
            api: Api {
                enabled: true,
                listen: "127.0.0.1:8081".parse().expect("valid literal"),
                allow_plaintext: false,
                max_body_bytes: 1024 * 1024,
                requests_per_minute: 6000,
                tls_cert: None,
                tls_key: None,
                max_connections: 128,
                max_connections_per_ip: 64,
            },
            web: Web {
                enabled: true,
                listen: "127.0.0.1:8080".parse().expect("valid literal"),
                tls_cert: None,
                tls_key: None,
                allow_plaintext: false,
                verify: WebVerify::Dob,
                max_failures: 3,
                session_idle: 15 * 60,
                session_max: 12 * 3600,
                attempts_per_minute: 10,
                new_conversations_per_hour: 10,
                notice: "For non-urgent requests only. In an emergency, call your local emergency \
                         number."
                    .into(),
                billing_consent: false,
                code_after_hours: 24,
                stylesheet: None,
                max_connections: 512,
                max_connections_per_ip: 32,
                trusted_proxies: Vec::new(),
            },
            http: Http::default(),
            held: Held::default(),
            sms: Sms {
                provider: SmsProvider::Email,
                twilio_base_url: "https://api.twilio.com".into(),
                twilio_account_sid: String::new(),
                twilio_auth_token_file: None,
                twilio_from: String::new(),
                webhook_url: String::new(),
                webhook_secret_file: None,
                timeout_secs: 10,
            },
            webhooks: Webhooks {
                retry_for: 24 * 3600,
                timeout_secs: 10,
                allow_plaintext: false,
                ca_file: None,
                allow_private: Vec::new(),
            },
            auth: Auth {
                policy: AuthPolicy::RequireDmarcPass,
                dns_servers: Vec::new(),
                dns_timeout_secs: 5,
                trusted_authserv_ids: Vec::new(),
                trusted_relays: Vec::new(),
            },
        }
    }

    /// Builds settings from an optional file `(path, text)` and the environment, then validates.
    ///
    /// The layers are the config crate's: the built-in defaults, then the file, then
    /// `SEALPOST_<SECTION>__<KEY>` variables, deserialised into the typed sections (each key's
    /// reader is in [`de`]). Before that, every key given is checked against the keys the
    /// defaults have, so an unknown one is named exactly, with where it came from.
    pub fn from_sources(file: Option<(&Path, &str)>, env: &Env) -> Result<Settings, ConfigError> {
        let defaults = Settings::defaults(env);
        let known = known_keys(&defaults);
        // Which source set each key: the environment overrides the file.
        let mut origins: HashMap<String, Origin> = HashMap::new();

        if let Some((path, text)) = file {
            let origin = Origin::File(path.to_owned());
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                let line = e
                    .span()
                    .map(|sp| text[..sp.start.min(text.len())].lines().count().max(1))
                    .unwrap_or(0);
                ConfigError {
                    key: format!("line {line}"),
                    origin: origin.clone(),
                    message: format!("not valid TOML: {}", e.message().trim()),
                }
            })?;
            for (section, value) in &table {
                let toml::Value::Table(keys) = value else {
                    return Err(ConfigError {
                        key: section.clone(),
                        origin,
                        message: "expected a [section] of settings".into(),
                    });
                };
                for key in keys.keys() {
                    let name = format!("{section}.{key}");
                    if !known.contains(&name) {
                        return Err(ConfigError {
                            key: name,
                            origin,
                            message: "unknown setting".into(),
                        });
                    }
                    origins.insert(name, origin.clone());
                }
            }
        }

        let mut overrides = config::Map::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if var == CONFIG_ENV {
                continue;
            }
            let origin = Origin::Env(var.clone());
            let Some((section, key)) = rest.split_once("__") else {
                return Err(ConfigError {
                    key: var.clone(),
                    origin,
                    message: "unknown setting; overrides are named SEALPOST_<SECTION>__<KEY>"
                        .into(),
                });
            };
            let name = format!("{}.{}", section.to_lowercase(), key.to_lowercase());
            if !known.contains(&name) {
                return Err(ConfigError {
                    key: name,
                    origin,
                    message: "unknown setting".into(),
                });
            }
            overrides.insert(var.clone(), value.clone());
            origins.insert(name, origin);
        }

        // A setting nobody set is reported against the file when there is one: that is where
        // the admin has to add it.
        let origin_of = |key: &str| -> Origin {
            match (origins.get(key), file) {
                (Some(o), _) => o.clone(),
                (None, Some((path, _))) => Origin::File(path.to_owned()),
                (None, None) => Origin::Default,
            }
        };

        let layered = || -> Result<Settings, config::ConfigError> {
            let mut builder =
                config::Config::builder().add_source(config::Config::try_from(&defaults)?);
            if let Some((_, text)) = file {
                builder =
                    builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
            }
            builder
                .add_source(
                    config::Environment::with_prefix("SEALPOST")
                        .prefix_separator("_")
                        .separator("__")
                        .source(Some(overrides.clone())),
                )
                .build()?
                .try_deserialize()
        };
        let mut s = layered().map_err(|e| {
            let (key, message) = explain(e);
            // "auth.trusted_relays[0]" is the setting auth.trusted_relays.
            let key = key.split('[').next().unwrap_or_default().to_owned();
            ConfigError {
                origin: origin_of(&key),
                key,
                message,
            }
        })?;

        // Settings derived from data_dir unless given explicitly.
        if !origins.contains_key("database.url") {
            s.database.url = format!(
                "sqlite://{}",
                s.general.data_dir.join("sealpost.db").display()
            );
        }
        if !origins.contains_key("keys.path") {
            s.keys.path = match lookup(env, "CREDENTIALS_DIRECTORY") {
                Some(dir) if Path::new(dir).join("keyring").exists() => {
                    Path::new(dir).join("keyring")
                }
                _ => s.general.data_dir.join("keyring.json"),
            };
        }
        if !origins.contains_key("outbound.spool_dir") {
            s.outbound.spool_dir = s.general.data_dir.join("spool");
        }

        if file.is_some() && !origins.contains_key("smtp.reply_domain") {
            return Err(ConfigError {
                key: "smtp.reply_domain".into(),
                origin: origin_of("smtp.reply_domain"),
                message: "missing: set the domain that routes reply mail to Sealpost".into(),
            });
        }
        s.validate().map_err(|(key, message)| ConfigError {
            origin: origin_of(key),
            key: key.to_owned(),
            message,
        })?;
        Ok(s)
    }

    /// Checks the settings as a whole, section by section; the error names the first bad key.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        self.validate_general()?;
        self.validate_database()?;
        self.validate_smtp()?;
        self.validate_imap()?;
        self.validate_outbound()?;
        self.validate_policy()?;
        self.validate_auth()?;
        self.validate_api()?;
        self.validate_web()?;
        self.validate_http()?;
        self.validate_held()?;
        self.validate_sms()?;
        self.validate_webhooks()
    }

    /// The `general` section: a name and a URL that can go into notifications.
    fn validate_general(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if self.general.organization.is_empty() || has_control(&self.general.organization) {
            return fail(
                "general.organization",
                "must be a non-empty name without control characters".into(),
            );
        }
        if let Err(msg) = check_url(&self.general.public_url) {
            return fail("general.public_url", msg);
        }
        let phrase = &self.general.recognition_phrase;
        if has_control(phrase) || crate::domain::text::has_hidden_characters(phrase) {
            return fail(
                "general.recognition_phrase",
                "must be plain text (no control, format or direction characters)".into(),
            );
        }
        if phrase.chars().count() > 100 {
            return fail(
                "general.recognition_phrase",
                "must be at most 100 characters: a few words people remember".into(),
            );
        }
        let contact = &self.general.contact;
        if has_control(contact)
            || crate::domain::text::has_hidden_characters(contact)
            || contact.chars().count() > 300
        {
            return fail(
                "general.contact",
                "must be one line of plain text, at most 300 characters".into(),
            );
        }
        Ok(())
    }

    /// The `database` section: a URL of a backend this build can open.
    fn validate_database(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        let url = &self.database.url;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return fail(
                "database.url",
                "PostgreSQL is not supported yet; use a sqlite:// URL".into(),
            );
        }
        if !url.starts_with("sqlite:") {
            return fail("database.url", "expected a sqlite:// URL".into());
        }
        Ok(())
    }

    /// The `smtp` section: names, limits, deadlines and TLS files.
    fn validate_smtp(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if !is_domain(&self.smtp.hostname) {
            return fail(
                "smtp.hostname",
                format!("'{}' is not a host name", self.smtp.hostname),
            );
        }
        if self.smtp.reply_domain.is_empty() {
            return fail(
                "smtp.reply_domain",
                "missing: set the domain that routes reply mail to Sealpost".into(),
            );
        }
        if !is_domain(&self.smtp.reply_domain) {
            return fail(
                "smtp.reply_domain",
                format!("'{}' is not a domain name", self.smtp.reply_domain),
            );
        }
        if !(1024..=1 << 30).contains(&self.smtp.max_message_bytes) {
            return fail(
                "smtp.max_message_bytes",
                "must be between 1024 and 1073741824".into(),
            );
        }
        if !(1024..=1 << 30).contains(&self.smtp.max_report_bytes) {
            return fail(
                "smtp.max_report_bytes",
                "must be between 1024 and 1073741824".into(),
            );
        }
        if !(self.smtp.max_message_bytes..=1 << 40).contains(&self.smtp.max_inflight_bytes) {
            return fail(
                "smtp.max_inflight_bytes",
                "must be at least smtp.max_message_bytes (one whole message fits)".into(),
            );
        }
        for (key, value, max) in [
            (
                "smtp.max_connections",
                self.smtp.max_connections as u64,
                100_000,
            ),
            (
                "smtp.max_connections_per_ip",
                self.smtp.max_connections_per_ip as u64,
                100_000,
            ),
            ("smtp.max_recipients", self.smtp.max_recipients as u64, 1000),
            ("smtp.max_errors", u64::from(self.smtp.max_errors), 1000),
            ("smtp.ehlo_timeout_secs", self.smtp.ehlo_timeout_secs, 3600),
            ("smtp.timeout_secs", self.smtp.timeout_secs, 3600),
            ("smtp.min_data_rate", self.smtp.min_data_rate, 1 << 30),
            ("smtp.max_session_secs", self.smtp.max_session_secs, 86_400),
        ] {
            if !(1..=max).contains(&value) {
                return fail(key, format!("must be between 1 and {max}"));
            }
        }
        match (&self.smtp.tls_cert, &self.smtp.tls_key) {
            (Some(_), None) => {
                return fail("smtp.tls_key", "required when smtp.tls_cert is set".into());
            }
            (None, Some(_)) => {
                return fail("smtp.tls_cert", "required when smtp.tls_key is set".into());
            }
            (Some(c), Some(k)) => {
                readable(c).or_else(|m| fail("smtp.tls_cert", m))?;
                readable(k).or_else(|m| fail("smtp.tls_key", m))?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The `imap` section: complete when enabled, never a password in clear text off loopback.
    fn validate_imap(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if let Some(ca) = &self.imap.ca_file {
            readable(ca).or_else(|m| fail("imap.ca_file", m))?;
        }
        if self.imap.enabled {
            if self.imap.host.is_empty() {
                return fail("imap.host", "required when imap.enabled is true".into());
            }
            if self.imap.username.is_empty() {
                return fail("imap.username", "required when imap.enabled is true".into());
            }
            match &self.imap.password_file {
                None => {
                    return fail(
                        "imap.password_file",
                        "required when imap.enabled is true".into(),
                    );
                }
                Some(p) => readable(p).or_else(|m| fail("imap.password_file", m))?,
            }
            if self.imap.tls == ImapTls::None && !is_loopback(&self.imap.host) {
                return fail(
                    "imap.tls",
                    "'none' sends the password in clear text; it is only allowed for a loopback host".into(),
                );
            }
            if self.imap.poll_interval_secs == 0 {
                return fail("imap.poll_interval_secs", "must be at least 1".into());
            }
            for (key, name) in [
                ("imap.mailbox", &self.imap.mailbox),
                ("imap.processed_mailbox", &self.imap.processed_mailbox),
                ("imap.rejected_mailbox", &self.imap.rejected_mailbox),
            ] {
                if name.is_empty() || has_control(name) {
                    return fail(key, "must be a mailbox name".into());
                }
            }
        }
        Ok(())
    }

    /// The `outbound` section: files that can be read, sane retry limits, a relay when one is named.
    fn validate_outbound(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if let Some(p) = &self.outbound.smtp_password_file {
            readable(p).or_else(|m| fail("outbound.smtp_password_file", m))?;
        }
        if let Some(p) = &self.outbound.smtp_ca_file {
            readable(p).or_else(|m| fail("outbound.smtp_ca_file", m))?;
        }
        if let Some(d) = &self.outbound.templates_dir
            && !d.is_dir()
        {
            return fail(
                "outbound.templates_dir",
                format!("{} is not a directory", d.display()),
            );
        }
        if !(1..=600).contains(&self.outbound.smtp_timeout_secs) {
            return fail(
                "outbound.smtp_timeout_secs",
                "must be between 1 and 600".into(),
            );
        }
        if !(1..=86_400).contains(&self.outbound.retry_base_secs) {
            return fail(
                "outbound.retry_base_secs",
                "must be between 1 and 86400".into(),
            );
        }
        if self.outbound.tls_fallback_after > 7 * 86_400 {
            return fail("outbound.tls_fallback_after", "must be at most 7d".into());
        }
        if !(1..=100).contains(&self.outbound.max_attempts) {
            return fail("outbound.max_attempts", "must be between 1 and 100".into());
        }
        if self.outbound.smtp_username.is_some() && self.outbound.smtp_password_file.is_none() {
            return fail(
                "outbound.smtp_password_file",
                "required when outbound.smtp_username is set".into(),
            );
        }
        if self.outbound.transport == Transport::Smtp {
            if self.outbound.smtp_host.is_empty() {
                return fail(
                    "outbound.smtp_host",
                    "required when outbound.transport is smtp".into(),
                );
            }
            if self.outbound.smtp_tls == SmtpTls::None && !is_loopback(&self.outbound.smtp_host) {
                return fail(
                    "outbound.smtp_tls",
                    "'none' is only allowed for a loopback relay".into(),
                );
            }
        }
        self.validate_dkim()
    }

    /// `outbound.dkim_*`: a selector and a key, or neither.
    fn validate_dkim(&self) -> Result<(), (&'static str, String)> {
        let o = &self.outbound;
        match (&o.dkim_selector, &o.dkim_key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err((
                    "outbound.dkim_key",
                    "required when outbound.dkim_selector is set (make one with \
                     `sealpost dkim-keygen`)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "outbound.dkim_selector",
                    "required when outbound.dkim_key is set".into(),
                ));
            }
            (Some(selector), Some(key)) => {
                if !is_domain(selector) {
                    return Err((
                        "outbound.dkim_selector",
                        format!("'{selector}' is not a DNS label such as s2026"),
                    ));
                }
                readable(key).map_err(|m| ("outbound.dkim_key", m))?;
            }
        }
        if let Some(d) = &o.dkim_domain
            && !is_domain(d)
        {
            return Err(("outbound.dkim_domain", format!("'{d}' is not a domain")));
        }
        Ok(())
    }

    /// The domain notifications are signed for: `outbound.dkim_domain`, else the domain of
    /// `outbound.from`.
    pub fn dkim_domain(&self) -> String {
        self.outbound
            .dkim_domain
            .clone()
            .unwrap_or_else(|| self.outbound.from.address.domain().to_owned())
    }

    /// The `policy` section.
    fn validate_policy(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if !(1..=3650).contains(&self.policy.token_ttl_days) {
            return fail("policy.token_ttl_days", "must be between 1 and 3650".into());
        }
        Ok(())
    }

    /// The `auth` section.
    fn validate_api(&self) -> Result<(), (&'static str, String)> {
        let api = &self.api;
        if api.tls_cert.is_some() != api.tls_key.is_some() {
            return Err((
                "api.tls_cert",
                "api.tls_cert and api.tls_key go together: set both or neither".into(),
            ));
        }
        let tls = api.tls_cert.is_some();
        if api.enabled && !tls && !api.listen.ip().is_loopback() && !api.allow_plaintext {
            return Err((
                "api.listen",
                format!(
                    "{} is not a loopback address and the API would speak plain HTTP: set \
                     api.tls_cert and api.tls_key, or put a TLS proxy in front and set \
                     api.allow_plaintext = true",
                    api.listen
                ),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&api.max_body_bytes) {
            return Err((
                "api.max_body_bytes",
                "expected between 1024 and 67108864 bytes".into(),
            ));
        }
        Ok(())
    }

    fn validate_web(&self) -> Result<(), (&'static str, String)> {
        let web = &self.web;
        if web.tls_cert.is_some() != web.tls_key.is_some() {
            return Err((
                "web.tls_cert",
                "web.tls_cert and web.tls_key go together: set both or neither".into(),
            ));
        }
        if web.enabled
            && web.tls_cert.is_none()
            && !web.listen.ip().is_loopback()
            && !web.allow_plaintext
        {
            return Err((
                "web.listen",
                format!(
                    "{} is not a loopback address and the web view would speak plain HTTP: set \
                     web.tls_cert and web.tls_key, or put a TLS proxy in front and set \
                     web.allow_plaintext = true",
                    web.listen
                ),
            ));
        }
        if web.enabled && self.api.enabled && web.listen == self.api.listen {
            return Err((
                "web.listen",
                "the web view and the API need different addresses".into(),
            ));
        }
        if !(1..=20).contains(&web.max_failures) {
            return Err(("web.max_failures", "expected 1 to 20".into()));
        }
        if !(60..=86_400).contains(&web.session_idle) {
            return Err(("web.session_idle", "expected between 1m and 24h".into()));
        }
        if web.session_max < web.session_idle || web.session_max > 7 * 86_400 {
            return Err((
                "web.session_max",
                "expected at least web.session_idle and at most 7d".into(),
            ));
        }
        if let Some(css) = &web.stylesheet {
            readable(css).map_err(|m| ("web.stylesheet", m))?;
        }
        if web.attempts_per_minute == 0 {
            return Err(("web.attempts_per_minute", "expected at least 1".into()));
        }
        Ok(())
    }

    fn validate_sms(&self) -> Result<(), (&'static str, String)> {
        let sms = &self.sms;
        if self.web.code_after_hours > 24 * 365 {
            return Err(("web.code_after_hours", "expected 0 to 8760".into()));
        }
        if !(1..=120).contains(&sms.timeout_secs) {
            return Err(("sms.timeout_secs", "expected 1 to 120".into()));
        }
        let url_ok = |url: &str| match url.split_once("://") {
            Some(("https", _)) => true,
            Some(("http", rest)) => {
                let host = rest.split(['/', '?']).next().unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            _ => false,
        };
        match sms.provider {
            SmsProvider::Email => Ok(()),
            SmsProvider::Twilio => {
                if !url_ok(&sms.twilio_base_url) {
                    return Err((
                        "sms.twilio_base_url",
                        "expected an https URL (or http on loopback)".into(),
                    ));
                }
                if sms.twilio_account_sid.is_empty() {
                    return Err(("sms.twilio_account_sid", "required for twilio".into()));
                }
                if sms.twilio_from.is_empty() {
                    return Err(("sms.twilio_from", "required for twilio".into()));
                }
                match &sms.twilio_auth_token_file {
                    None => Err(("sms.twilio_auth_token_file", "required for twilio".into())),
                    Some(p) => readable(p).map_err(|m| ("sms.twilio_auth_token_file", m)),
                }
            }
            SmsProvider::Webhook => {
                if !url_ok(&sms.webhook_url) {
                    return Err((
                        "sms.webhook_url",
                        "expected an https URL (or http on loopback)".into(),
                    ));
                }
                match &sms.webhook_secret_file {
                    None => Err(("sms.webhook_secret_file", "required for webhook".into())),
                    Some(p) => readable(p).map_err(|m| ("sms.webhook_secret_file", m)),
                }
            }
        }
    }

    fn validate_webhooks(&self) -> Result<(), (&'static str, String)> {
        let w = &self.webhooks;
        if w.retry_for == 0 || w.retry_for > 7 * 86_400 {
            return Err(("webhooks.retry_for", "expected between 1s and 7d".into()));
        }
        if !(1..=120).contains(&w.timeout_secs) {
            return Err((
                "webhooks.timeout_secs",
                "expected between 1 and 120 seconds".into(),
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), (&'static str, String)> {
        if !(1..=60).contains(&self.auth.dns_timeout_secs) {
            return Err(("auth.dns_timeout_secs", "must be between 1 and 60".into()));
        }
        if let Some(id) = self.auth.trusted_authserv_ids.iter().find(|id| {
            !id.bytes()
                .all(|b| b.is_ascii_graphic() && !b"();\"\\".contains(&b))
        }) {
            return Err((
                "auth.trusted_authserv_ids",
                format!("'{id}' is not an authserv-id (a host name, as the relay writes it)"),
            ));
        }
        Ok(())
    }

    /// What is valid but probably not meant: said by `check-config` and at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = self.http_warnings();
        if !self.general.public_url.starts_with("https://") {
            out.push(format!(
                "general.public_url ({}) is not https: secure links and the web view's \
                 session cookies would cross the network in clear",
                self.general.public_url
            ));
        }
        out
    }

    /// The settings as TOML, with any password inside `database.url` replaced by `***`.
    pub fn to_redacted_toml(&self) -> String {
        let mut copy = self.clone();
        copy.database.url = redact_url(&copy.database.url);
        toml::to_string(&copy).expect("settings always serialise")
    }

    /// Whether a SQLite database is configured, and where its file is.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        let rest = self.database.url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let rest = rest.split('?').next().unwrap_or(rest);
        Some(PathBuf::from(rest))
    }
}

/// Every `section.key` there is: the keys of the defaults (a key that is none by default is
/// there too, as a null).
fn known_keys(defaults: &Settings) -> std::collections::HashSet<String> {
    let value = serde_json::to_value(defaults).expect("settings always serialise");
    let mut keys = std::collections::HashSet::new();
    if let serde_json::Value::Object(sections) = value {
        for (section, fields) in sections {
            if let serde_json::Value::Object(fields) = fields {
                keys.extend(fields.keys().map(|k| format!("{section}.{k}")));
            }
        }
    }
    keys
}

/// A deserialisation error as (key, what is wrong).
fn explain(e: config::ConfigError) -> (String, String) {
    match e {
        config::ConfigError::At { error, key, .. } => {
            let (inner, message) = explain(*error);
            (key.filter(|k| !k.is_empty()).unwrap_or(inner), message)
        }
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (
            key.unwrap_or_default(),
            format!("expected {expected}, not {unexpected}"),
        ),
        other => (String::new(), other.to_string()),
    }
}

fn lookup<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn readable(p: &Path) -> Result<(), String> {
    std::fs::File::open(p)
        .map(drop)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn check_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("'{u}' is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || has_control(u) || u.contains(char::is_whitespace) {
        return Err(format!("'{u}' is not a valid URL"));
    }
    Ok(())
}

fn redact_url(u: &str) -> String {
    match (u.find("://"), u.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &u[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &u[..s + 3], &u[at..]),
                None => u.to_owned(),
            }
        }
        _ => u.to_owned(),
    }
}

#[cfg(test)]
mod tests;
