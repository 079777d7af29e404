//! The keyring, DKIM keys and reply tokens: `keygen`, `dkim-keygen`, `token inspect`.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::Settings;
use sealpost::crypto::token::token_in_address;
use sealpost::crypto::{Keyring, ReplyToken, TokenError};
use sealpost::outbound::dkim;

use crate::output::print_json;

pub(crate) fn keygen(settings: &Settings, rotate: bool) -> anyhow::Result<()> {
    let path = &settings.keys.path;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        app::ensure_dir(dir)?;
    }
    let keyring = if rotate {
        let mut k = Keyring::load(path)?;
        k.rotate();
        k.write(path)?;
        k
    } else {
        let k = Keyring::generate();
        k.create(path)?;
        k
    };
    eprintln!(
        "sealpost: keyring written to {}; back it up, and restart the daemon to use the new key",
        path.display()
    );
    print_json(json!({
        "path": path.display().to_string(),
        "current_key_id": keyring.current_id(),
        "keys": keyring.key_ids().iter().map(|(id, at)| json!({"key_id": id, "created_at": clock::rfc3339(*at)})).collect::<Vec<_>>(),
    }))
}

pub(crate) fn dkim_keygen(
    settings: &Settings,
    out: &std::path::Path,
    algorithm: &str,
    selector: Option<String>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let algorithm = match algorithm.to_ascii_lowercase().as_str() {
        "rsa" | "rsa2048" | "rsa-sha256" => dkim::Algorithm::Rsa2048,
        "ed25519" | "ed25519-sha256" => dkim::Algorithm::Ed25519,
        other => bail!("--algorithm {other}: expected rsa or ed25519"),
    };
    let selector = selector
        .or_else(|| settings.outbound.dkim_selector.clone())
        .unwrap_or_else(|| {
            format!(
                "s{}",
                &clock::rfc3339(clock::Clock::system().now())[..7].replace('-', "")
            )
        });
    let selector = selector.to_ascii_lowercase();
    if selector.is_empty()
        || !selector
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        bail!("--selector {selector}: expected a DNS label such as s2026");
    }
    let key = dkim::generate(algorithm)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never replaced)",
                out.display()
            )
        })?;
    if let Err(e) = file
        .write_all(key.pem.as_bytes())
        .and_then(|_| file.sync_all())
    {
        let _ = std::fs::remove_file(out);
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    let domain = settings.dkim_domain();
    let name = format!("{selector}._domainkey.{domain}");
    // Zone files take at most 255 characters per string; longer records are several.
    let strings = key
        .record
        .as_bytes()
        .chunks(255)
        .map(|c| format!("\"{}\"", String::from_utf8_lossy(c)))
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "sealpost: DKIM key written to {}. Publish the TXT record below, then set\n  \
         outbound.dkim_selector = \"{selector}\"\n  outbound.dkim_key = \"{}\"\n\
         and restart the daemon.",
        out.display(),
        out.display()
    );
    print_json(json!({
        "key_file": out.display().to_string(),
        "algorithm": match algorithm {
            dkim::Algorithm::Rsa2048 => "rsa-sha256",
            dkim::Algorithm::Ed25519 => "ed25519-sha256",
        },
        "domain": domain,
        "selector": selector,
        "record_name": name,
        "record": key.record,
        "zone_line": format!("{name}. 3600 IN TXT ( {strings} )"),
    }))
}

pub(crate) async fn inspect(settings: &Settings, input: &str) -> anyhow::Result<()> {
    let input = input.trim();
    let token = if input.contains('@') {
        token_in_address(input, &settings.smtp.reply_domain).with_context(|| {
            format!(
                "'{input}' is not a reply address of this gateway (reply+TOKEN@{})",
                settings.smtp.reply_domain
            )
        })?
    } else {
        input
    };
    let keyring = Keyring::load(&settings.keys.path)?;
    let ttl = settings.policy.token_ttl_days;
    // Claims are shown only when the MAC verified (valid or merely expired): the fields of a
    // token with a bad signature are whatever its forger wrote.
    let (valid, reason, claims, key_id) =
        match ReplyToken::verify(token, &keyring, clock::Clock::system().now(), ttl) {
            Ok(t) => (true, None, Some(t.claims), Some(t.claims.key_id)),
            Err(e @ TokenError::Expired { claims, .. }) => {
                (false, Some(e.reason()), Some(claims), Some(claims.key_id))
            }
            Err(e @ TokenError::UnknownKey(id)) => (false, Some(e.reason()), None, Some(id)),
            Err(e) => (false, Some(e.reason()), None, None),
        };
    print_json(json!({
        "valid": valid,
        "reason": reason,
        "key_id": key_id,
        "thread_id": claims.map(|c| c.thread_id.to_string()),
        "participant": claims.map(|c| c.participant_id.to_string()),
        "issued_at": claims.map(|c| clock::rfc3339(c.issued_at)),
        "expires_at": claims.map(|c| clock::rfc3339(c.expires_at(ttl))),
    }))
}
