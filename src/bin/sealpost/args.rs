//! Arguments as typed on the command line, checked and turned into the library's types.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};

use sealpost::domain::{Mailbox, Role, ThreadId, WebhookId};
use sealpost::store::NewParticipant;

use crate::cli::*;

pub(crate) fn read_body(arg: &BodyArg) -> anyhow::Result<String> {
    let bytes = match arg.body_file.as_deref() {
        Some(p) if p.as_os_str() == "-" => read_stdin()?,
        Some(p) => {
            std::fs::read(p).with_context(|| format!("cannot read body file {}", p.display()))?
        }
        None if std::io::stdin().is_terminal() => {
            bail!("no message body: give --body-file FILE, or pipe the body on stdin")
        }
        None => read_stdin()?,
    };
    let body = String::from_utf8(bytes).context("the message body is not UTF-8 text")?;
    let body = body.replace("\r\n", "\n");
    let body = body.trim_end();
    if body.trim().is_empty() {
        bail!("the message body is empty");
    }
    Ok(body.to_owned())
}

pub(crate) fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read the message body from stdin")?;
    Ok(buf)
}

pub(crate) fn participant(text: &str, role: Role) -> anyhow::Result<NewParticipant> {
    let mb: Mailbox = text.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let display_name = match mb.name {
        Some(n) => sealpost::domain::person::text("name", &n).map_err(|e| anyhow::anyhow!(e))?,
        None => None,
    };
    Ok(NewParticipant {
        address: mb.address,
        display_name,
        role,
    })
}

pub(crate) fn thread_id(text: &str) -> anyhow::Result<ThreadId> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("'{text}' is not a thread id: {e}"))
}

pub(crate) fn held_id(text: &str) -> anyhow::Result<i64> {
    u64::from_str_radix(text, 16)
        .ok()
        .filter(|_| !text.is_empty() && text.len() <= 16)
        .and_then(|v| i64::try_from(v).ok())
        .with_context(|| format!("'{text}' is not a held message id (16 hexadecimal digits)"))
}

pub(crate) fn webhook_id(text: &str) -> anyhow::Result<WebhookId> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("'{text}' is not a webhook id: {e}"))
}

/// Who is deciding, for the audit trail: `--by`, else the invoking user.
pub(crate) fn decided_by(by: Option<String>) -> anyhow::Result<String> {
    let by = by
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .context("say who decides with --by NAME (no $USER to take it from)")?;
    text_argument("--by", &by)?;
    Ok(by.trim().to_owned())
}

/// A text given on the command line that ends up in stored data or headers: no control
/// characters (a line break in a subject is a header injection waiting for a template).
pub(crate) fn text_argument(name: &str, value: &str) -> anyhow::Result<()> {
    if value.chars().any(char::is_control) {
        bail!("{name}: control characters (line breaks, tabs, escapes) are not allowed");
    }
    Ok(())
}
