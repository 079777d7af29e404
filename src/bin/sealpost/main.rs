#![forbid(unsafe_code)]
//! The `sealpost` command: the daemon and its administration CLI.
//!
//! This file only parses arguments, runs the matching library call and maps failures to exit
//! codes: 64 (EX_USAGE) for any invalid configuration, 1 for everything else. JSON results go
//! to stdout one object per line; errors are one line on stderr. The commands live in modules
//! named for what they manage.

mod args;
mod cli;
mod held;
mod integrations;
mod keys;
mod output;
mod people;
mod threads;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use serde_json::json;

use sealpost::app;
use sealpost::config::{self, ConfigError, Settings};
use sealpost::crypto::{KeyError, Keyring};
use sealpost::logging;
use sealpost::store::Store;
use sealpost::store::backup;

use crate::cli::*;
use crate::held::held;
use crate::integrations::{apikey, webhook};
use crate::keys::{dkim_keygen, inspect, keygen};
use crate::output::print_json;
use crate::people::person;
use crate::threads::{outbox_list, reply_text, thread};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The daemon logs its progress; one-shot commands only warnings, so stdout stays JSON
    // and stderr stays quiet.
    let level = if matches!(cli.command, Command::Serve) {
        "info"
    } else {
        "warn"
    };
    logging::init(cli.log_format, level);
    logging::install_panic_hook();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A value from the configuration that cannot be used when starting (a TLS key, a
            // password file) is as much a configuration error as one that does not parse.
            let start_key = e
                .downcast_ref::<app::AppError>()
                .and_then(|a| a.config_key());
            match start_key {
                Some(key) => eprintln!("sealpost: invalid configuration: {key}: {e:#}"),
                None => eprintln!("sealpost: {e:#}"),
            }
            if e.downcast_ref::<ConfigError>().is_some() || start_key.is_some() {
                ExitCode::from(64)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Generate { out } = &cli.command {
        return generate(out);
    }
    let loaded = config::load(cli.config.as_deref())?;
    let settings = loaded.settings;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Serve => runtime.block_on(async {
            let stop = app::termination();
            app::serve(settings, stop).await
        })?,
        Command::CheckConfig => check_config(&settings, loaded.file)?,
        Command::Keygen { rotate } => keygen(&settings, rotate)?,
        Command::DkimKeygen {
            out,
            algorithm,
            selector,
        } => dkim_keygen(&settings, &out, &algorithm, selector)?,
        Command::Thread(cmd) => runtime.block_on(thread(&settings, cmd))?,
        Command::ReplyText { file, explain } => reply_text(file, explain)?,
        Command::Outbox(OutboxCommand::List { status, thread }) => {
            runtime.block_on(outbox_list(&settings, status, thread))?
        }
        Command::Token(TokenCommand::Inspect { token_or_address }) => {
            runtime.block_on(inspect(&settings, &token_or_address))?
        }
        Command::Held(cmd) => runtime.block_on(held(&settings, cmd))?,
        Command::Person(cmd) => runtime.block_on(person(&settings, cmd))?,
        Command::Apikey(cmd) => runtime.block_on(apikey(&settings, cmd))?,
        Command::Webhook(cmd) => runtime.block_on(webhook(&settings, cmd))?,
        Command::Backup {
            to,
            with_keyring,
            check,
        } => backup_command(&runtime, &settings, to, with_keyring, check)?,
        // Answered before the configuration is read (it needs none); here for completeness.
        Command::Generate { out } => generate(&out)?,
        Command::Restore { from } => {
            let database = Store::database_path(&settings.database.url)?;
            let restored = backup::restore(&from, &database, &settings.keys.path)?;
            print_json(json!(restored))?;
        }
        Command::Sms(SmsCommand::List { limit }) => runtime.block_on(async {
            let store = app::open_store(&settings).await?;
            let listed = store.sms_messages(limit.clamp(1, 10_000)).await;
            store.close().await;
            for m in listed? {
                print_json(json!(m))?;
            }
            anyhow::Ok(())
        })?,
    }
    Ok(())
}

/// Man pages (one per command) and completions, from the same definitions the parser uses.
fn generate(out: &std::path::Path) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let man = out.join("man");
    let completions = out.join("completions");
    for dir in [&man, &completions] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    clap_mangen::generate_to(Cli::command(), &man)
        .with_context(|| format!("cannot write man pages to {}", man.display()))?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut Cli::command(), "sealpost", &completions)
            .with_context(|| format!("cannot write completions to {}", completions.display()))?;
    }
    Ok(())
}

/// `check-config`: warnings on stderr, then the effective settings with secrets redacted.
fn check_config(settings: &Settings, file: Option<PathBuf>) -> anyhow::Result<()> {
    for w in settings.warnings() {
        eprintln!("sealpost: warning: {w}");
    }
    let source = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "built-in defaults".into());
    let keyring = match Keyring::load(&settings.keys.path) {
        Ok(k) => format!(
            "present, {} key(s), current id {}",
            k.key_ids().len(),
            k.current_id()
        ),
        Err(KeyError::Missing(_)) => "missing (created on first `sealpost serve`)".into(),
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "# configuration is valid; read from {source}")?;
    writeln!(out, "# keyring {}: {keyring}", settings.keys.path.display())?;
    write!(out, "{}", settings.to_redacted_toml())?;
    Ok(())
}

/// `backup --to DIR` (a consistent copy while the daemon runs, with a manifest) or `backup
/// verify DIR`.
fn backup_command(
    runtime: &tokio::runtime::Runtime,
    settings: &Settings,
    to: Option<PathBuf>,
    with_keyring: bool,
    check: Option<BackupCommand>,
) -> anyhow::Result<()> {
    if let Some(BackupCommand::Verify { dir }) = check {
        let keyring = Arc::new(Keyring::load(&settings.keys.path)?);
        let found = runtime.block_on(backup::verify(&dir, keyring))?;
        print_json(json!(found))?;
        if !found.failures.is_empty() {
            anyhow::bail!(
                "{} part(s) of the backup could not be opened",
                found.failures.len()
            );
        }
        return Ok(());
    }
    let to = to.context("--to DIR: where to write the backup")?;
    let database = Store::database_path(&settings.database.url)?;
    let manifest = backup::backup(
        &database,
        &to,
        with_keyring.then_some(settings.keys.path.as_path()),
    )?;
    if with_keyring {
        eprintln!(
            "warning: the keyring is in {} beside the data: whoever holds this backup can read every conversation in it",
            to.display()
        );
    }
    print_json(json!(manifest))
}
