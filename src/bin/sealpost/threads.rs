//! `thread …`, `outbox list` and `reply-text`: conversations, their notifications, and
//! what the reply-text extraction keeps of a message.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use serde_json::json;

use sealpost::app;
use sealpost::config::Settings;
use sealpost::domain::DeliveryStatus;
use sealpost::domain::{Address, Mode, ParticipantId, Role, ThreadId, Via};
use sealpost::http::api::{
    ConversationCreated, Notification, Participant, PostedResponse, Thread, ThreadItem,
};
use sealpost::store::projection::Viewer;
use sealpost::store::{NewThread, Store, StoreError};

use crate::args::*;
use crate::cli::*;
use crate::output::{print, print_json};

pub(crate) async fn thread(settings: &Settings, cmd: ThreadCommand) -> anyhow::Result<()> {
    // Read the body before opening anything, so a bad file fails fast and leaves no trace.
    let body = match &cmd {
        ThreadCommand::New(a) => Some(read_body(&a.body)?),
        ThreadCommand::Post { body, .. } => Some(read_body(body)?),
        _ => None,
    };
    let store = app::open_store(settings).await?;
    let result = match cmd {
        ThreadCommand::New(a) => new_thread(settings, &store, &a, body.expect("read above")).await,
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
            print(&PostedResponse::from(posted))
        }
        ThreadCommand::Show { thread_id: t } => show(&store, &t).await,
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
            let thread = thread_id(&t)?;
            let id = store.add_participant(thread, &who, shared).await?;
            print_participant(&store, thread, id).await
        }
        ThreadCommand::RemoveParticipant {
            thread_id: t,
            address,
        } => remove_participant(&store, &t, &address).await,
        ThreadCommand::List => {
            for t in store.list_threads().await? {
                print(&ThreadItem::from(t))?;
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
        print(&Notification::from(n))?;
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
        for r in &extraction.removed {
            writeln!(
                out,
                "removed line {} ({}; rule {}): {}",
                r.line,
                r.rule.reason(),
                r.rule,
                r.text
            )?;
        }
        writeln!(out, "--- reply text ---")?;
    }
    writeln!(out, "{}", extraction.text)?;
    Ok(())
}

/// A participant of `thread` as the API shows them (`id`: their participant id).
async fn print_participant(
    store: &Store,
    thread: ThreadId,
    id: ParticipantId,
) -> anyhow::Result<()> {
    let view = store.thread_for(thread, Viewer::Practice).await?;
    print(&Participant::find(&view, id).context("the participant is gone")?)
}

/// `thread new`: one conversation per recipient outside the practice (one in all with
/// `--shared`), each printed as the API answers it.
async fn new_thread(
    settings: &Settings,
    store: &Store,
    args: &NewArgs,
    body: String,
) -> anyhow::Result<()> {
    text_argument("--subject", &args.subject)?;
    sealpost::domain::text::one_line(
        "--subject",
        &args.subject,
        sealpost::domain::text::SUBJECT_MAX,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    let mode = match args.mode.as_deref() {
        Some(m) => m.parse::<Mode>()?,
        None => settings.policy.default_mode,
    };
    let made = store
        .start_conversations(NewThread {
            subject: args.subject.trim().to_owned(),
            mode,
            author: participant(&args.from, Role::Staff)?,
            others: args
                .to
                .iter()
                .map(|t| participant(t, Role::Recipient))
                .collect::<anyhow::Result<_>>()?,
            body,
            via: Via::Cli,
            shared: args.shared,
        })
        .await?;
    // One line per conversation opened.
    for c in made {
        print(&ConversationCreated::new(c, args.shared))?;
    }
    Ok(())
}

/// `thread show`: the whole conversation, recorded as read by the account that ran it.
async fn show(store: &Store, t: &str) -> anyhow::Result<()> {
    let v = store
        .thread_for(thread_id(t)?, sealpost::store::projection::Viewer::Practice)
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
    print(&Thread::from(v))
}

/// `thread remove-participant`: the participant as they now are (removed).
async fn remove_participant(store: &Store, t: &str, address: &str) -> anyhow::Result<()> {
    let addr = Address::parse(address).map_err(|e| anyhow::anyhow!("--address {address}: {e}"))?;
    let thread = thread_id(t)?;
    let view = store.thread_for(thread, Viewer::Practice).await?;
    let id = view
        .participants
        .iter()
        .find(|p| p.address == addr && !p.revoked)
        .map(|p| p.id);
    store.remove_participant(thread, &addr).await?;
    match id {
        Some(id) => print_participant(store, thread, id).await,
        None => Ok(()),
    }
}
