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

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::kinds::vocabulary;
use crate::domain::{AuthPolicy, Mailbox, Mode};

pub use crate::domain::network::Network;

mod de;
mod defaults;
mod held;
mod http;
mod sources;
mod validate;

pub use sources::load;

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

impl Settings {
    /// The domain notifications are signed for: `outbound.dkim_domain`, else the domain of
    /// `outbound.from`.
    pub fn dkim_domain(&self) -> String {
        self.outbound
            .dkim_domain
            .clone()
            .unwrap_or_else(|| self.outbound.from.address.domain().to_owned())
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
