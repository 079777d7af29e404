//! `held …`: mail kept sealed until a person decides.

use std::sync::Arc;

use anyhow::bail;
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::Settings;
use sealpost::domain::HeldStatus;
use sealpost::inbound::auth::Checker;
use sealpost::inbound::pipeline::{Envelope, Outcome};
use sealpost::store::{HeldSummary, Store};

use crate::args::*;
use crate::cli::*;
use crate::output::print_json;

pub(crate) async fn held(settings: &Settings, cmd: HeldCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = held_command(settings, &store, cmd).await;
    store.close().await;
    result
}

pub(crate) fn held_json(h: &HeldSummary) -> serde_json::Value {
    json!({
        "id": format!("{:016x}", h.id),
        "received_at": clock::rfc3339(h.received_at),
        "door": h.door.as_str(),
        "reason": h.reason.as_str(),
        "status": h.status.as_str(),
        "thread_id": h.thread.map(|t| t.to_string()),
        "participant": h.participant.map(|p| p.to_string()),
        "size": h.size,
        "decided_at": h.decided_at.map(clock::rfc3339),
        "decided_by": h.decided_by,
        "auth": h.auth,
    })
}

pub(crate) async fn held_command(
    settings: &Settings,
    store: &Store,
    cmd: HeldCommand,
) -> anyhow::Result<()> {
    match cmd {
        HeldCommand::List { status } => {
            let status = status
                .map(|s| s.parse::<HeldStatus>().map_err(|e| anyhow::anyhow!(e)))
                .transpose()?;
            for h in store.held_list(status).await? {
                print_json(held_json(&h))?;
            }
            Ok(())
        }
        HeldCommand::Show { id } => {
            let h = store.held(held_id(&id)?).await?;
            let mut out = held_json(&h.summary);
            let raw = h.raw.clone();
            // What the pipeline would file; a message held because handling it failed may
            // fail here too, and the rest is still worth showing.
            let shown = tokio::task::spawn_blocking(move || {
                let m = sealpost::inbound::mime::parse(&raw).ok()?;
                let header = |v: Option<&str>| v.map(str::to_owned);
                Some((
                    header(m.subject()),
                    m.from()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .map(str::to_owned),
                    m.date().map(|d| d.to_rfc3339()),
                    sealpost::inbound::reply_text::from_message(&raw).map(|e| e.text),
                ))
            })
            .await
            .ok()
            .flatten();
            out["header_message_id"] = json!(h.header_message_id);
            out["mail_from"] = json!(h.envelope.mail_from);
            out["rcpt_to"] = json!(h.envelope.rcpt_to);
            if let Some((subject, from, date, text)) = shown {
                out["from"] = json!(from);
                out["subject"] = json!(subject);
                out["date"] = json!(date);
                out["reply_text"] = json!(text);
            } else if h.summary.status == HeldStatus::Held {
                out["error"] = json!("the message cannot be read (see the log for where)");
            }
            print_json(out)
        }
        HeldCommand::Release { id, by } => {
            let by = decided_by(by)?;
            let id = held_id(&id)?;
            let h = store.held(id).await?;
            if h.summary.status != HeldStatus::Held {
                bail!("held message {id:016x} was already {}", h.summary.status);
            }
            // A release files the message as if it had passed: nothing is checked again (the
            // filed message records who released it and what was found before).
            let unchecked = Arc::new(Checker::off());
            let pipeline = app::pipeline(settings, store, Default::default(), unchecked);
            let envelope = Envelope::from_held(&h.envelope, h.summary.door);
            let outcome = pipeline
                .release(id, &envelope, h.raw, &by, h.summary.auth.clone())
                .await?;
            let (status, detail) = match &outcome {
                Outcome::Filed { thread, message } => (
                    "filed",
                    json!({"thread_id": thread.to_string(), "message_id": message.to_string()}),
                ),
                Outcome::Duplicate { thread } => {
                    ("duplicate", json!({"thread_id": thread.to_string()}))
                }
                Outcome::Refused { reason, .. } => ("not-filed", json!({"reason": reason})),
                other => ("not-filed", json!({"outcome": format!("{other:?}")})),
            };
            print_json(json!({"id": format!("{id:016x}"), "outcome": status, "detail": detail}))?;
            if !outcome.is_filed() {
                bail!(
                    "held message {id:016x} was not filed; it stays held (reject it, or fix the cause and release it again)"
                );
            }
            Ok(())
        }
        HeldCommand::Reject { id, by } => {
            let by = decided_by(by)?;
            let id = held_id(&id)?;
            store.reject_held(id, &by).await?;
            print_json(json!({"id": format!("{id:016x}"), "status": "rejected", "by": by}))
        }
    }
}
