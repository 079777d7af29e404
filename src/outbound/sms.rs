//! The SMS sender: sends the codes of the web view's 24-hour rule through the configured
//! provider, from a durable outbox (`sms_outbox`), retried until the code expires.
//!
//! A row holds no text and no number. Both are made when the row is sent: the code from its
//! nonce and the keyring, the number from the directory (sealed there). Delivery is
//! at-least-once, like the outbox: a row is marked sent only after the provider accepted it,
//! so a process killed in between sends the same code again after restart (the same code: it
//! is computed, not drawn anew).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::compose::Composer;
use super::transport::Transport;
use crate::config::{Sms, SmsProvider};
use crate::domain::retry::{Backoff, Next, Retry};
use crate::jobs::Work;
use crate::store::Store;
use crate::store::codes::{DueSms, SmsAttempt, SmsOutcome};
use crate::store::queue::Queue;

/// Text messages claimed per round.
const BATCH: i64 = 8;
/// Delays before the retries, after 1, 2, … failures; the last repeats until the code expires.
const SCHEDULE_SECS: &[i64] = &[5, 15, 30, 60, 120];

/// The `User-Agent` of every request.
const USER_AGENT: &str = concat!("Sealpost-SMS/", env!("CARGO_PKG_VERSION"));

/// Why the sender cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum SmsSetupError {
    #[error("cannot read {key} ({path}): {source}")]
    Secret {
        key: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("sms.webhook_secret_file: expected whsec_ followed by base64")]
    WebhookSecret,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// Where codes go.
enum Provider {
    Twilio {
        /// `…/2010-04-01/Accounts/<sid>/Messages.json`.
        url: String,
        account_sid: String,
        auth_token: String,
        from: String,
    },
    Webhook {
        url: String,
        secret: Vec<u8>,
    },
    /// Emails through the configured transport (its own connection, not the outbox
    /// worker's), composed like notifications.
    Email {
        composer: Box<Composer>,
        transport: Arc<Mutex<Transport>>,
    },
}

/// The text messages' [`Work`]: the job queue's runner ([`crate::jobs::run`]) claims due
/// messages, this sends them (a batch at once; each attempt bounded by the timeout).
pub struct SmsSender {
    store: Store,
    client: reqwest::Client,
    provider: Provider,
    organization: String,
    timeout: Duration,
}

impl Work for SmsSender {
    fn queue(&self) -> Queue {
        Queue::TextMessages
    }

    fn batch(&self) -> i64 {
        BATCH
    }

    fn lease_secs(&self) -> i64 {
        i64::try_from(self.timeout.as_secs()).unwrap_or(60) * 2 + 30
    }

    async fn work(&mut self, ids: Vec<i64>, _shutdown: &CancellationToken) -> Vec<i64> {
        let batch = match self.store.due_text_messages(&ids).await {
            Ok(b) => b,
            Err(e) => {
                error!(error = %e, "cannot load text messages; they are tried again when their claims run out");
                return Vec::new();
            }
        };
        let attempts = futures_util::future::join_all(batch.iter().map(|m| self.attempt(m))).await;
        let records = batch.iter().map(|m| m.id).zip(attempts).collect();
        if let Err(e) = self.store.record_sms(records).await {
            error!(error = %e, "cannot record text messages; they will be sent again");
        }
        Vec::new()
    }

    async fn close(&mut self) {
        if let Provider::Email { transport, .. } = &self.provider {
            transport.lock().await.close().await;
        }
    }
}

/// Reads a secret from a file, trimmed.
fn secret_file(key: &'static str, path: &Path) -> Result<String, SmsSetupError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|source| SmsSetupError::Secret {
            key,
            path: path.to_owned(),
            source,
        })
}

impl SmsSender {
    /// A sender for `sms` whose claims are `owner`'s (the outbox worker's, so that one
    /// release at start frees what a killed predecessor held). `composer` and `transport`
    /// serve the `email` provider.
    pub fn new(
        store: Store,
        sms: &Sms,
        organization: &str,
        composer: Composer,
        transport: Transport,
    ) -> Result<SmsSender, SmsSetupError> {
        let timeout = Duration::from_secs(sms.timeout_secs);
        let provider = match sms.provider {
            SmsProvider::Twilio => {
                let token = match &sms.twilio_auth_token_file {
                    Some(p) => secret_file("sms.twilio_auth_token_file", p)?,
                    None => String::new(),
                };
                Provider::Twilio {
                    url: format!(
                        "{}/2010-04-01/Accounts/{}/Messages.json",
                        sms.twilio_base_url, sms.twilio_account_sid
                    ),
                    account_sid: sms.twilio_account_sid.clone(),
                    auth_token: token,
                    from: sms.twilio_from.clone(),
                }
            }
            SmsProvider::Webhook => {
                let text = match &sms.webhook_secret_file {
                    Some(p) => secret_file("sms.webhook_secret_file", p)?,
                    None => String::new(),
                };
                let secret = crate::crypto::webhook::parse_secret(&text)
                    .ok_or(SmsSetupError::WebhookSecret)?;
                Provider::Webhook {
                    url: sms.webhook_url.clone(),
                    secret,
                }
            }
            SmsProvider::Email => Provider::Email {
                composer: Box::new(composer),
                transport: Arc::new(Mutex::new(transport)),
            },
        };
        let tls = crate::tls::client_config(None)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| SmsSetupError::Client(e.to_string()))?;
        Ok(SmsSender {
            store,
            client,
            provider,
            organization: organization.to_owned(),
            timeout,
        })
    }

    /// The words of a text message.
    fn text(&self, code: &str) -> String {
        format!(
            "{}: your code is {code}. It is valid for 10 minutes. Do not share it with anyone.",
            self.organization
        )
    }

    /// One attempt, and what it came to.
    async fn attempt(&self, m: &DueSms) -> SmsAttempt {
        let now = self.store.clock().now();
        let attempts = m.attempts + 1;
        let result = match &m.code {
            None => Err(Failure::permanent("the key the code was made with is gone")),
            Some(_) if now >= m.give_up_at => Err(Failure::permanent("the code expired")),
            Some(code) => self.send(m, code, now).await,
        };
        let (outcome, error) = match result {
            Ok(()) => {
                info!(
                    sms = m.id,
                    attempts,
                    provider = self.provider_name(),
                    "code sent"
                );
                crate::metrics::count(
                    &crate::metrics::metrics().sms_attempts,
                    [("result", "sent")],
                );
                return SmsAttempt {
                    at: now,
                    error: None,
                    outcome: SmsOutcome::Sent,
                };
            }
            Err(f) => {
                let retry = Retry {
                    backoff: Backoff::Steps(SCHEDULE_SECS),
                    max_attempts: None,
                };
                let failures = u32::try_from(attempts).unwrap_or(u32::MAX);
                // A code that arrives as it expires is of no use.
                let last = m.give_up_at - 1;
                match retry.after_failure(failures, now, Some(last), f.permanent, 0.0) {
                    Next::RetryAt(at) => (SmsOutcome::RetryAt(at), f.reason),
                    Next::GiveUp => (SmsOutcome::GaveUp, f.reason),
                }
            }
        };
        let gave_up = outcome == SmsOutcome::GaveUp;
        crate::metrics::count(
            &crate::metrics::metrics().sms_attempts,
            [("result", if gave_up { "failed" } else { "retry" })],
        );
        if gave_up {
            warn!(sms = m.id, attempts, reason = %error, "a code could not be sent; given up");
        } else {
            warn!(sms = m.id, attempts, reason = %error, "a code could not be sent; will retry");
        }
        SmsAttempt {
            at: now,
            error: Some(error),
            outcome,
        }
    }

    fn provider_name(&self) -> &'static str {
        match self.provider {
            Provider::Twilio { .. } => "twilio",
            Provider::Webhook { .. } => "webhook",
            Provider::Email { .. } => "email",
        }
    }

    async fn send(&self, m: &DueSms, code: &str, now: i64) -> Result<(), Failure> {
        match &self.provider {
            Provider::Email {
                composer,
                transport,
            } => {
                let email = composer.code_email(&m.address, code, now);
                transport
                    .lock()
                    .await
                    .deliver(&email)
                    .await
                    .map(drop)
                    .map_err(|e| Failure {
                        permanent: e.permanent || e.no_tls,
                        // A relay's answer names the recipient ("550 <jane@…>: no such user"):
                        // kept and shown with the local part hidden, like a notification's.
                        reason: crate::logging::redact_addresses(&e.message),
                    })
            }
            Provider::Twilio {
                url,
                account_sid,
                auth_token,
                from,
            } => {
                let to = m
                    .mobile
                    .as_deref()
                    .ok_or_else(|| Failure::permanent("no mobile number on file"))?;
                let text = self.text(code);
                let from_field = if from.starts_with("MG") {
                    "MessagingServiceSid"
                } else {
                    "From"
                };
                let sent = self
                    .client
                    .post(url)
                    .basic_auth(account_sid, Some(auth_token))
                    .form(&[("To", to), (from_field, from.as_str()), ("Body", &text)])
                    .send()
                    .await;
                answered(sent)
            }
            Provider::Webhook { url, secret } => {
                let to = m
                    .mobile
                    .as_deref()
                    .ok_or_else(|| Failure::permanent("no mobile number on file"))?;
                let id = format!("sms_{:016x}", m.id);
                let body =
                    serde_json::json!({"id": id, "to": to, "body": self.text(code)}).to_string();
                let signature =
                    crate::crypto::webhook::signature(secret, &id, now, body.as_bytes());
                let sent = self
                    .client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", now.to_string())
                    .header("webhook-signature", signature)
                    .body(body)
                    .send()
                    .await;
                answered(sent)
            }
        }
    }
}

/// Why an attempt failed, and whether trying again could help.
struct Failure {
    permanent: bool,
    /// For the row's `last_error`: a status or a connection error, never the text or number.
    reason: String,
}

impl Failure {
    fn permanent(reason: &str) -> Failure {
        Failure {
            permanent: true,
            reason: reason.to_owned(),
        }
    }
}

/// A provider's answer: 2xx is sent; 408, 429 and 5xx are worth retrying; other answers say
/// the request itself is wrong (bad credentials, a number the provider refuses).
fn answered(sent: Result<reqwest::Response, reqwest::Error>) -> Result<(), Failure> {
    match sent {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            Err(Failure {
                permanent: status.is_client_error()
                    && status != reqwest::StatusCode::REQUEST_TIMEOUT
                    && status != reqwest::StatusCode::TOO_MANY_REQUESTS,
                reason: format!("the provider answered {status}"),
            })
        }
        Err(e) => Err(Failure {
            permanent: false,
            reason: if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                "request failed".to_owned()
            },
        }),
    }
}
