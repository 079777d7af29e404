//! Webhook subscriptions and their deliveries: made, listed and removed by the operator (CLI
//! or API), claimed and recorded by the daemon's webhook sender. A delivery row is written in
//! the transaction of the event it announces (see [`crate::domain::webhook`]).

use super::ops::{Done, Op};
use super::{Store, StoreError, unexpected};
use crate::crypto::{KeyId, WebhookSecret, WrappedKey};
use crate::domain::WebhookId;
use crate::domain::webhook::WebhookEvent;

/// The `webhook-id` of a delivery (the same on every retry), as listed and sent.
pub fn delivery_id(id: i64) -> String {
    format!("msg_{id:016x}")
}

/// The row of a `webhook-id` this store made.
pub fn parse_delivery_id(text: &str) -> Option<i64> {
    text.strip_prefix("msg_")
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|n| *n > 0)
}

/// A subscription as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookView {
    pub id: WebhookId,
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub created_at: i64,
    pub removed_at: Option<i64>,
}

/// A new subscription: the only time its secret is shown.
#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub id: WebhookId,
    /// `whsec_<base64>`, for the receiver to check signatures with.
    pub secret: String,
}

/// A subscription to insert.
#[derive(Debug, Clone)]
pub(crate) struct NewWebhookRow {
    pub id: i64,
    pub url: String,
    pub description: String,
    pub events: Vec<WebhookEvent>,
    pub wrapped: WrappedKey,
}

/// One delivery as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: WebhookId,
    pub event_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub last_attempt_at: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

/// A claimed delivery, with what sending it needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret: WebhookSecret,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: i64,
}

/// What an attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered,
    /// Try again at this time.
    RetryAt(i64),
    /// The retry window is over.
    GaveUp,
}

/// One attempt: when, what the receiver answered (if it did) or why not, and the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookAttempt {
    pub at: i64,
    pub http_status: Option<u16>,
    /// A short reason (never a response body: a receiver's answer is not ours to keep).
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    pub webhook: Option<WebhookId>,
    pub status: Option<String>,
    /// Only deliveries with a smaller id (the next page, newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

impl Store {
    /// Makes a subscription to `events` at `url`; its secret is returned once.
    pub async fn create_webhook(
        &self,
        url: &str,
        events: &[WebhookEvent],
        description: &str,
    ) -> Result<NewWebhook, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid(
                "a webhook needs at least one event type".into(),
            ));
        }
        let id = WebhookId::random();
        let secret = WebhookSecret::generate();
        self.write(Op::CreateWebhook(NewWebhookRow {
            id: id.0,
            url: url.to_owned(),
            description: description.to_owned(),
            events: events.to_vec(),
            wrapped: secret.wrap(self.keyring(), id.0),
        }))
        .await?;
        Ok(NewWebhook {
            id,
            secret: secret.to_text(),
        })
    }

    /// Every subscription, newest first (removed ones too, marked).
    pub async fn webhooks(&self) -> Result<Vec<WebhookView>, StoreError> {
        self.backend()
            .webhooks()
            .await?
            .into_iter()
            .map(|(id, url, description, events, created_at, removed_at)| {
                Ok(WebhookView {
                    id: WebhookId(id),
                    url,
                    description,
                    events: events
                        .split(',')
                        .filter(|e| !e.is_empty())
                        .map(|e| super::rows::parse("event type", e))
                        .collect::<Result<_, _>>()?,
                    created_at,
                    removed_at,
                })
            })
            .collect()
    }

    /// One subscription.
    pub async fn webhook(&self, id: WebhookId) -> Result<WebhookView, StoreError> {
        self.webhooks()
            .await?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or(StoreError::UnknownWebhook(id.0))
    }

    /// Removes a subscription; its pending deliveries are cancelled (returns how many).
    pub async fn remove_webhook(&self, id: WebhookId) -> Result<u64, StoreError> {
        match self.write(Op::RemoveWebhook(id.0)).await? {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("remove-webhook")),
        }
    }

    /// Deliveries, newest first.
    pub async fn webhook_deliveries(
        &self,
        filter: &DeliveryFilter,
    ) -> Result<Vec<DeliveryView>, StoreError> {
        self.backend().webhook_deliveries(filter).await
    }

    /// The claimed deliveries `ids` (see [`super::queue::Queue::WebhookDeliveries`]), with
    /// their secrets unwrapped.
    pub async fn due_webhook_deliveries(
        &self,
        ids: &[i64],
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut due = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some(row) = self.backend().due_delivery(id).await? else {
                continue;
            };
            let corrupt = || StoreError::Corrupt(format!("secret of webhook {:016x}", row.1));
            let wrapped = WrappedKey {
                key_id: KeyId::try_from(row.3).map_err(|_| corrupt())?,
                sealed: row.4,
            };
            let secret =
                WebhookSecret::unwrap(self.keyring(), row.1, &wrapped).map_err(|_| corrupt())?;
            due.push(DueDelivery {
                id,
                webhook_id: WebhookId(row.1),
                url: row.2,
                secret,
                payload: row.5,
                attempts: row.6,
                created_at: row.7,
            });
        }
        Ok(due)
    }

    /// Records attempts and releases their claims.
    pub async fn record_webhook_attempts(
        &self,
        attempts: Vec<(i64, WebhookAttempt)>,
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.write(Op::RecordWebhookAttempts(attempts))
            .await
            .map(drop)
    }
}
