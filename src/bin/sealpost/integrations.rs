//! `webhook …` and `apikey …`: how the practice's own systems reach Sealpost and hear from it.

use anyhow::Context;
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::Settings;
use sealpost::domain::webhook::WebhookEvent;
use sealpost::domain::{ApiKeyId, ApiScope};
use sealpost::store::webhooks::DeliveryFilter;

use crate::args::*;
use crate::cli::*;
use crate::output::{print, print_json};
use sealpost::http::api::{Delivery, NewWebhookResponse, Webhook};

pub(crate) async fn webhook(settings: &Settings, cmd: WebhookCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = async {
        match cmd {
            WebhookCommand::Add {
                url,
                events,
                description,
            } => {
                let url = settings
                    .webhooks
                    .targets()
                    .check_url(&url)
                    .map_err(|e| anyhow::anyhow!("--url: {e}"))?;
                let events = WebhookEvent::parse_list(&events)
                    .map_err(|e| anyhow::anyhow!("--events: {e}"))?;
                if events.is_empty() {
                    anyhow::bail!("--events: name at least one event type, or *");
                }
                let made = store
                    .create_webhook(url.as_str(), &events, description.trim())
                    .await?;
                let view = store.webhook(made.id).await?;
                eprintln!(
                    "sealpost: the secret is shown once: the receiver checks each delivery's webhook-signature with it"
                );
                print(&NewWebhookResponse {
                    webhook: view.into(),
                    secret: made.secret,
                })
            }
            WebhookCommand::List => {
                for w in store.webhooks().await? {
                    print(&Webhook::from(w))?;
                }
                Ok(())
            }
            WebhookCommand::Remove { id } => {
                let id = webhook_id(&id)?;
                let cancelled = store.remove_webhook(id).await?;
                print_json(json!({"removed": id.to_string(), "deliveries_cancelled": cancelled}))
            }
            WebhookCommand::Deliveries {
                webhook,
                status,
                limit,
            } => {
                let filter = DeliveryFilter {
                    webhook: webhook.as_deref().map(webhook_id).transpose()?,
                    status,
                    before: None,
                    limit: limit.clamp(1, 10_000),
                };
                for d in store.webhook_deliveries(&filter).await? {
                    print(&Delivery::from(d))?;
                }
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

pub(crate) async fn apikey(settings: &Settings, cmd: ApikeyCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = async {
        match cmd {
            ApikeyCommand::Create { name, scope } => {
                let name = sealpost::domain::person::text("--name", &name)
                    .map_err(|e| anyhow::anyhow!(e))?
                    .context("--name: give the key a name")?;
                let scope: ApiScope = scope.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
                let key = store.create_api_key(&name, scope).await?;
                print_json(json!({
                    "id": key.id.to_string(),
                    "name": name,
                    "scope": scope.as_str(),
                    "key": key.key,
                    "note": "shown once: store it in the client's secret store",
                }))
            }
            ApikeyCommand::List => {
                for k in store.api_keys().await? {
                    print_json(json!({
                        "id": k.id.to_string(),
                        "name": k.name,
                        "scope": k.scope.as_str(),
                        "created_at": clock::rfc3339(k.created_at),
                        "revoked_at": k.revoked_at.map(clock::rfc3339),
                    }))?;
                }
                Ok(())
            }
            ApikeyCommand::Revoke { id } => {
                let id: ApiKeyId = id
                    .parse()
                    .map_err(|e| anyhow::anyhow!("'{id}' is not a key id: {e}"))?;
                store.revoke_api_key(id).await?;
                print_json(json!({"revoked": id.to_string()}))
            }
        }
    }
    .await;
    store.close().await;
    result
}
