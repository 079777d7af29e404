//! `thread …`, `outbox list` and `reply-text`: conversations, their notifications, and
//! what the reply-text extraction keeps of a message.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::Settings;
use sealpost::domain::DeliveryStatus;
use sealpost::domain::{Address, Mode, Role, Via};
use sealpost::store::{NewThread, StoreError};

use crate::args::*;
use crate::cli::*;
use crate::output::print_json;

pub(crate) async fn thread(settings: &Settings, cmd: ThreadCommand) -> anyhow::Result<()> {
    // Read the body before opening anything, so a bad file fails fast and leaves no trace.
    let body = match &cmd {
        ThreadCommand::New(a) => Some(read_body(&a.body)?),
        ThreadCommand::Post { body, .. } => Some(read_body(body)?),
        _ => None,
    };
    let store = app::open_store(settings).await?;
    let result = match cmd {
        ThreadCommand::New(a) => {
            text_argument("--subject", &a.subject)?;
            sealpost::domain::text::one_line(
                "--subject",
                &a.subject,
                sealpost::domain::text::SUBJECT_MAX,
            )
            .map_err(|e| anyhow::anyhow!(e))?;
            let mode = match a.mode.as_deref() {
                Some(m) => m.parse::<Mode>()?,
                None => settings.policy.default_mode,
            };
            let made = store
                .start_conversations(NewThread {
                    subject: a.subject.trim().to_owned(),
                    mode,
                    author: participant(&a.from, Role::Staff)?,
                    others: a
                        .to
                        .iter()
                        .map(|t| participant(t, Role::Recipient))
                        .collect::<anyhow::Result<_>>()?,
                    body: body.expect("read above"),
                    via: Via::Cli,
                    shared: a.shared,
                })
                .await?;
            // One line per conversation opened.
            for c in made {
                print_json(json!({
                    "thread_id": c.posted.thread_id.to_string(),
                    "message_id": c.posted.message_id.to_string(),
                    "to": c.to.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                    "shared": a.shared && c.to.len() > 1,
                }))?;
            }
            Ok(())
        }
        ThreadCommand::Post {
            thread_id: t, from, ..
        } => {
            let thread = thread_id(&t)?;
            let from = Address::parse(&from).map_err(|e| anyhow::anyhow!("--from {from}: {e}"))?;
            let posted = store
                .post_message(thread, &from, &body.expect("read above"), Via::Cli)
                .await
                .map_err(|e| match e {
                    StoreError::NotParticipant { .. } => anyhow::anyhow!("--from: {e}"),
                    other => other.into(),
                })?;
            print_json(json!({"message_id": posted.message_id.to_string()}))
        }
        ThreadCommand::Show { thread_id: t } => {
            let v = store
                .thread_for(
                    thread_id(&t)?,
                    sealpost::store::projection::Viewer::Practice,
                )
                .await?;
            // A staff read, recorded: who ran it (the account), and that a message read can no
            // longer be taken back by its author.
            let reader = format!(
                "cli:{}",
                std::env::var("SUDO_USER")
                    .or_else(|_| std::env::var("USER"))
                    .unwrap_or_else(|_| "unknown".into())
            );
            let ids: Vec<_> = v.messages.iter().map(|m| m.id).collect();
            store.record_access(&ids, &reader).await?;
            print_json(json!({
                "thread_id": v.id.to_string(),
                "subject": v.subject,
                "mode": v.mode.as_str(),
                "status": if v.closed { "closed" } else { "open" },
                "shared": v.shared,
                "created_at": clock::rfc3339(v.created_at),
                "held": v.held,
                "participants": v.participants.iter().map(|p| json!({
                    "address": p.address.as_str(),
                    "role": p.role.as_str(),
                    "display_name": p.display_name,
                    "revoked": p.revoked,
                    "archived": p.archived,
                    // What their notifications carry: content only in a convenience thread,
                    // and there only to staff and to recipients who agreed.
                    "content_by_email": v.mode == Mode::Convenience
                        && (p.role == Role::Staff || p.consented == Some(true)),
                })).collect::<Vec<_>>(),
                "messages": v.messages.iter().map(|m| json!({
                    "message_id": m.id.to_string(),
                    "from": m.author_address.as_str(),
                    "body": m.body,
                    "via": m.via.as_str(),
                    "created_at": clock::rfc3339(m.created_at),
                    "auth": m.auth,
                    "answers": m.answers.map(|a| a.to_string()),
                    "read_by": v.read_by(m.id).iter().map(|(a, at)| json!({
                        "address": a.as_str(),
                        "read_at": clock::rfc3339(*at),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "withdrawn": v.withdrawn.iter().map(|w| json!({
                    "message_id": w.id.to_string(),
                    "from": w.author_address.as_str(),
                    "created_at": clock::rfc3339(w.created_at),
                    "withdrawn_at": clock::rfc3339(w.withdrawn_at),
                })).collect::<Vec<_>>(),
            }))
        }
        ThreadCommand::Close { thread_id: t } => {
            store.close_thread(thread_id(&t)?).await?;
            print_json(json!({"thread_id": t, "status": "closed"}))
        }
        ThreadCommand::Reopen { thread_id: t } => {
            store.reopen_thread(thread_id(&t)?).await?;
            print_json(json!({"thread_id": t, "status": "open"}))
        }
        ThreadCommand::AddParticipant {
            thread_id: t,
            address,
            role,
            shared,
        } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("--role: {e}"))?;
            let who = participant(&address, role)?;
            let id = store.add_participant(thread_id(&t)?, &who, shared).await?;
            print_json(json!({
                "thread_id": t,
                "participant_id": id.to_string(),
                "added": who.address.as_str(),
                "role": role.as_str(),
            }))
        }
        ThreadCommand::RemoveParticipant {
            thread_id: t,
            address,
        } => {
            let addr = Address::parse(&address)
                .map_err(|e| anyhow::anyhow!("--address {address}: {e}"))?;
            store.remove_participant(thread_id(&t)?, &addr).await?;
            print_json(json!({"thread_id": t, "removed": addr.as_str()}))
        }
        ThreadCommand::List => {
            for t in store.list_threads().await? {
                print_json(json!({
                    "thread_id": t.id.to_string(),
                    "subject": t.subject,
                    "mode": t.mode.as_str(),
                    "participants": t.participants,
                    "messages": t.messages,
                    "held": t.held,
                    "last_activity": clock::rfc3339(t.last_activity_at),
                }))?;
            }
            Ok(())
        }
    };
    store.close().await;
    result
}

pub(crate) async fn outbox_list(
    settings: &Settings,
    status: Option<String>,
    thread: Option<String>,
) -> anyhow::Result<()> {
    let status = status
        .map(|s| s.parse::<DeliveryStatus>().map_err(|e| anyhow::anyhow!(e)))
        .transpose()?;
    let thread = thread.as_deref().map(thread_id).transpose()?;
    let store = app::open_store(settings).await?;
    let rows = store.list_notifications(status, thread).await;
    store.close().await;
    for n in rows? {
        print_json(json!({
            "id": n.id.to_string(),
            "thread_id": n.thread_id.to_string(),
            "recipient": n.recipient,
            "kind": n.kind,
            "mode": n.mode.as_str(),
            "status": n.status.as_str(),
            "attempts": n.attempts,
            "last_error": n.last_error,
            "created_at": clock::rfc3339(n.created_at),
            "sent_at": n.sent_at.map(clock::rfc3339),
            "relay_reply": n.relay_reply,
            "tls": n.tls,
        }))?;
    }
    Ok(())
}

pub(crate) fn reply_text(file: Option<PathBuf>, explain: bool) -> anyhow::Result<()> {
    let raw = match &file {
        Some(p) => std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?,
        None => read_stdin()?,
    };
    sealpost::inbound::mime::parse(&raw)?;
    let extraction = sealpost::inbound::reply_text::from_message(&raw)
        .context("the message has no text part")?;
    let mut out = std::io::stdout().lock();
    if explain {
        for (line, reason, text) in &extraction.removed {
            writeln!(out, "removed line {line} ({reason}): {text}")?;
        }
        writeln!(out, "--- reply text ---")?;
    }
    writeln!(out, "{}", extraction.text)?;
    Ok(())
}
