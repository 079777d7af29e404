#![forbid(unsafe_code)]
//! The `sealpost` command: the daemon and its administration CLI.
//!
//! This file only parses arguments, runs the matching library call and maps failures to exit
//! codes: 64 (EX_USAGE) for any invalid configuration, 1 for everything else. JSON results go
//! to stdout one object per line; errors are one line on stderr.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use sealpost::app;
use sealpost::clock;
use sealpost::config::{self, ConfigError, Settings};
use sealpost::crypto::token::token_in_address;
use sealpost::crypto::{KeyError, Keyring, ReplyToken, TokenError};
use sealpost::domain::consent::CONVENIENCE_WARNING;
use sealpost::domain::webhook::WebhookEvent;
use sealpost::domain::{
    Address, ApiKeyId, ApiScope, Mailbox, Mode, PersonKind, Role, ThreadId, Via, WebhookId,
};
use sealpost::domain::{DeliveryStatus, HeldStatus};
use sealpost::inbound::auth::Checker;
use sealpost::inbound::pipeline::{Envelope, Outcome};
use sealpost::logging::{self, LogFormat};
use sealpost::outbound::dkim;
use sealpost::store::backup;
use sealpost::store::webhooks::DeliveryFilter;
use sealpost::store::{
    Consent, HeldSummary, NewParticipant, NewThread, PersonDetails, PersonView, Store, StoreError,
};

/// Email gateway for secure message threads.
#[derive(Parser)]
#[command(name = "sealpost", version, about, propagate_version = true)]
struct Cli {
    /// Configuration file (default: $SEALPOST_CONFIG, else /etc/sealpost/sealpost.toml if it
    /// exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Shape of log lines on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGTERM.
    Serve,
    /// Validate the configuration and print it, with secrets redacted.
    CheckConfig,
    /// Create the keyring, or add a new current key to it.
    Keygen {
        /// Add a new current key and keep the old ones for reading and verifying.
        #[arg(long)]
        rotate: bool,
    },
    /// Make a DKIM key for signing notifications, and print the DNS record to publish.
    DkimKeygen {
        /// Where to write the private key (PEM, readable by its owner only); an existing
        /// file is never overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// rsa (2048 bits: every receiver checks it) or ed25519 (smaller; some receivers
        /// still ignore it).
        #[arg(long, default_value = "rsa", value_name = "ALGORITHM")]
        algorithm: String,
        /// The selector to publish the key under (default: outbound.dkim_selector, else
        /// sYYYYMM of today).
        #[arg(long, value_name = "NAME")]
        selector: Option<String>,
    },
    /// Create, post to and read threads.
    #[command(subcommand)]
    Thread(ThreadCommand),
    /// Examine reply tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The practice's directory of people: patients, staff, colleagues; their details and
    /// their consent to convenience mode.
    #[command(subcommand)]
    Person(PersonCommand),
    /// Print the reply text of an email: what the person wrote, without quoted history,
    /// reply headers or signature.
    ReplyText {
        /// An RFC 5322 message (default: stdin).
        file: Option<PathBuf>,
        /// Show which lines were removed, and why.
        #[arg(long)]
        explain: bool,
    },
    /// Examine the notification outbox.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Review held mail: messages kept sealed, not filed, until a person decides.
    #[command(subcommand)]
    Held(HeldCommand),
    /// Keys for the HTTP API.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Webhooks: signed HTTP POSTs to the practice's systems when something happens.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// The codes of the web view's 24-hour rule, sent by SMS or email.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Copy the database to a directory, consistent while the daemon runs, with a manifest
    /// (`backup --to DIR`); or check a backup (`backup verify DIR`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Backup {
        /// A new or empty directory to write the backup to.
        #[arg(long, value_name = "DIR", required = true)]
        to: Option<PathBuf>,
        /// Copy the keyring into the backup too. Anyone holding such a backup can read every
        /// conversation in it: keep the keyring's backup somewhere else instead.
        #[arg(long)]
        with_keyring: bool,
        #[command(subcommand)]
        check: Option<BackupCommand>,
    },
    /// Write the man pages and shell completions (bash, zsh, fish) into DIR/man and
    /// DIR/completions: what the Debian package installs.
    #[command(hide = true)]
    Generate {
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restore a backup into a place without a database (nothing is ever overwritten).
    Restore {
        /// The backup directory (made by `sealpost backup --to`).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Check a backup's checksum and open every thread and person in it with the keyring.
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum SmsCommand {
    /// Print the latest text messages (codes), newest first: status, attempts, last error.
    /// Never the code or the number.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Subscribe a URL to events; prints the signing secret once.
    Add {
        /// Where deliveries are POSTed (https, or http to loopback).
        #[arg(long)]
        url: String,
        /// Event types, comma-separated, or `*` for all: message.filed, notification.status,
        /// inbound.rejected, inbound.ignored, inbound.held, held.decided, thread.created,
        /// thread.closed, thread.reopened, participant.added, participant.removed,
        /// person.updated, person.removed.
        #[arg(long)]
        events: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Print one line per subscription (never its secret).
    List,
    /// Remove a subscription; its pending deliveries are cancelled.
    Remove {
        /// The subscription's id, as `webhook list` prints it.
        id: String,
    },
    /// Print deliveries, newest first.
    Deliveries {
        /// Only this subscription's.
        #[arg(long)]
        webhook: Option<String>,
        /// Only those with this status.
        #[arg(long, value_parser = ["pending", "delivered", "failed", "cancelled"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum ApikeyCommand {
    /// Make a key and print it once (only a hash of it is kept).
    Create {
        /// What it is for ("portal", "ehr").
        #[arg(long)]
        name: String,
        /// read: GET only; write: also change threads and people; admin: everything.
        #[arg(long, default_value = "write", value_parser = ["read", "write", "admin"])]
        scope: String,
    },
    /// Print one line per key (never the key itself).
    List,
    /// Revoke a key: requests with it are refused from now on.
    Revoke {
        /// The key's id, as `apikey list` prints it.
        id: String,
    },
}

#[derive(Subcommand)]
enum HeldCommand {
    /// Print one line per held message, newest first.
    List {
        /// Only messages with this status (default: all).
        #[arg(long, value_parser = ["held", "released", "rejected"])]
        status: Option<String>,
    },
    /// Print one held message: why it was held, its envelope and headers, and its reply text.
    Show {
        /// The held message's id, as `held list` prints it.
        id: String,
    },
    /// File a held message into its thread after all, as if it had passed.
    Release {
        /// The held message's id.
        id: String,
        /// Who decided, for the audit trail (default: $SUDO_USER, else $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Drop a held message: its sealed copy is destroyed; the decision stays in the audit trail.
    Reject {
        /// The held message's id.
        id: String,
        /// Who decided, for the audit trail (default: $SUDO_USER, else $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Print one line per notification, newest first.
    List {
        /// Only notifications with this status.
        #[arg(long, value_parser = ["queued", "sent", "deferred", "failed", "bounced", "cancelled", "suppressed"])]
        status: Option<String>,
        /// Only notifications of this thread.
        #[arg(long, value_name = "ID")]
        thread: Option<String>,
    },
}

#[derive(Subcommand)]
enum ThreadCommand {
    /// Open a thread with a first message; notifications are queued for every recipient.
    New(NewArgs),
    /// Post a message into a thread as one of its participants.
    Post {
        /// The thread's id, as printed by `thread new` or `thread list`.
        thread_id: String,
        /// The author's address; must be a participant of the thread.
        #[arg(long, value_name = "ADDR")]
        from: String,
        #[command(flatten)]
        body: BodyArg,
    },
    /// Print a thread with its messages.
    Show {
        /// The thread's id.
        thread_id: String,
    },
    /// Print one line per thread.
    List,
    /// Close a thread: no more posts; email replies get a short notice instead.
    Close {
        /// The thread's id.
        thread_id: String,
    },
    /// Re-open a closed thread: posts and email replies are taken again.
    Reopen {
        /// The thread's id.
        thread_id: String,
    },
    /// Add a participant to an open thread: notified of messages posted from now on.
    AddParticipant {
        /// The thread's id.
        thread_id: String,
        /// The participant (`addr` or `Name <addr>`).
        #[arg(long, value_name = "ADDR")]
        address: String,
        /// staff or recipient.
        #[arg(long, default_value = "recipient", value_parser = ["staff", "recipient"])]
        role: String,
        /// Needed to add a second person outside the practice: they then read the conversation
        /// together.
        #[arg(long)]
        shared: bool,
    },
    /// Remove a participant: no more notifications, and their reply addresses stop working.
    RemoveParticipant {
        /// The thread's id.
        thread_id: String,
        /// The participant's address.
        #[arg(long, value_name = "ADDR")]
        address: String,
    },
}

#[derive(Args)]
struct NewArgs {
    /// The staff member opening the thread (`addr` or `Name <addr>`).
    #[arg(long, value_name = "ADDR")]
    from: String,
    /// A recipient; repeat for several. Each one outside the practice gets a conversation of
    /// their own (one JSON line each), unless --shared.
    #[arg(long, value_name = "ADDR", required = true)]
    to: Vec<String>,
    /// The recipients outside the practice read one conversation together (a family, a
    /// couple), each seeing everything written in it.
    #[arg(long)]
    shared: bool,
    /// The thread's subject (sealed at rest; never in secure-mode notifications).
    #[arg(long)]
    subject: String,
    /// The thread's mode (default: policy.default_mode).
    #[arg(long, value_parser = ["secure", "convenience"])]
    mode: Option<String>,
    #[command(flatten)]
    body: BodyArg,
}

#[derive(Args)]
struct BodyArg {
    /// Read the message body from FILE, or from stdin with `-` (the default when stdin is not
    /// a terminal).
    #[arg(long, value_name = "FILE")]
    body_file: Option<PathBuf>,
}

/// What `person add` and `person update` may set. On update, an option left out keeps what
/// is there and an empty value ("") clears it.
#[derive(clap::Args)]
struct PersonFields {
    /// patient, staff or colleague.
    #[arg(long, value_parser = ["patient", "staff", "colleague"])]
    kind: Option<String>,
    /// The name to address them by.
    #[arg(long)]
    name: Option<String>,
    /// A staff member's title ("Nurse", "Dr").
    #[arg(long)]
    title: Option<String>,
    /// A colleague's practice.
    #[arg(long)]
    practice: Option<String>,
    /// A patient's date of birth, YYYY-MM-DD (sealed in the database).
    #[arg(long, value_name = "YYYY-MM-DD")]
    birth_date: Option<String>,
    /// Mobile number in international form, +4915112345678 (sealed in the database).
    #[arg(long, value_name = "+E164")]
    mobile: Option<String>,
    /// off: they opted out of notifications (recorded as suppressed, never sent).
    #[arg(long, value_parser = ["on", "off"])]
    notifications: Option<String>,
    /// registered, invited or locked.
    #[arg(long, value_parser = ["registered", "invited", "locked"])]
    status: Option<String>,
}

#[derive(Subcommand)]
enum PersonCommand {
    /// Add a person to the directory (an address that is already there is refused: use
    /// update).
    Add {
        /// The person's email address.
        address: String,
        #[command(flatten)]
        fields: PersonFields,
    },
    /// Change what the directory says about a person.
    Update {
        /// The person's email address.
        address: String,
        #[command(flatten)]
        fields: PersonFields,
    },
    /// Print one line per person, by address.
    List {
        /// Only people of this kind.
        #[arg(long, value_parser = ["patient", "staff", "colleague"])]
        kind: Option<String>,
    },
    /// Remove a person who is no longer a participant of any thread.
    Remove {
        /// The person's email address.
        address: String,
    },
    /// Set the passcode a person gives on the secure web view (web.verify = "passcode"), read
    /// from standard input (never from the command line, where other users could see it).
    Passcode {
        /// The person's email address.
        address: String,
        /// Remove the passcode instead.
        #[arg(long)]
        clear: bool,
        /// Who sets it (recorded in the audit trail).
        #[arg(long)]
        by: String,
    },
    /// Lift a lockout of the secure web view (after failed identity checks).
    Unlock {
        /// The person's email address.
        address: String,
        /// Who unlocks (recorded in the audit trail).
        #[arg(long)]
        by: String,
    },
    /// Record whether a person agreed to convenience mode (message content by ordinary email).
    /// Without it they get secure notifications, in every thread.
    Consent {
        /// The person's email address.
        address: String,
        /// yes: they were shown the warning that email is not fully protected, and agreed;
        /// no: they declined or withdrew.
        #[arg(long, value_name = "yes|no")]
        convenience: String,
        /// The text they were shown (default: Sealpost's standard warning).
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
        /// Who recorded it, for the audit trail (default: $SUDO_USER, else $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Print what the directory knows of a person.
    Show {
        /// The person's email address.
        address: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Verify a token (or a `reply+TOKEN@domain` address) and print what it says.
    Inspect {
        /// A token or a reply address.
        token_or_address: String,
    },
}

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
        Command::CheckConfig => {
            for w in settings.warnings() {
                eprintln!("sealpost: warning: {w}");
            }
            let source = loaded
                .file
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
        }
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
            check: Some(BackupCommand::Verify { dir }),
            ..
        } => {
            let keyring = Arc::new(Keyring::load(&settings.keys.path)?);
            let found = runtime.block_on(backup::verify(&dir, keyring))?;
            print_json(json!(found))?;
            if !found.failures.is_empty() {
                anyhow::bail!(
                    "{} part(s) of the backup could not be opened",
                    found.failures.len()
                );
            }
        }
        Command::Backup {
            to, with_keyring, ..
        } => {
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
            print_json(json!(manifest))?;
        }
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

fn print_json(value: serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{value}")?;
    Ok(())
}

fn keygen(settings: &Settings, rotate: bool) -> anyhow::Result<()> {
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

fn webhook_id(text: &str) -> anyhow::Result<WebhookId> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("'{text}' is not a webhook id: {e}"))
}

async fn webhook(settings: &Settings, cmd: WebhookCommand) -> anyhow::Result<()> {
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
                print_json(json!({
                    "id": made.id.to_string(),
                    "url": url.as_str(),
                    "events": events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                    "secret": made.secret,
                    "note": "shown once: the receiver checks each delivery's webhook-signature with it",
                }))
            }
            WebhookCommand::List => {
                for w in store.webhooks().await? {
                    print_json(json!({
                        "id": w.id.to_string(),
                        "url": w.url,
                        "description": w.description,
                        "events": w.events.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                        "created_at": clock::rfc3339(w.created_at),
                        "removed_at": w.removed_at.map(clock::rfc3339),
                    }))?;
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
                    print_json(json!({
                        "id": sealpost::store::webhooks::delivery_id(d.id),
                        "webhook_id": d.webhook_id.to_string(),
                        "event_id": d.event_id,
                        "type": d.event_type,
                        "status": d.status,
                        "attempts": d.attempts,
                        "created_at": clock::rfc3339(d.created_at),
                        "next_attempt_at": (d.status == "pending").then(|| clock::rfc3339(d.next_attempt_at)),
                        "last_attempt_at": d.last_attempt_at.map(clock::rfc3339),
                        "last_status": d.last_status,
                        "last_error": d.last_error,
                        "delivered_at": d.delivered_at.map(clock::rfc3339),
                    }))?;
                }
                Ok(())
            }
        }
    }
    .await;
    store.close().await;
    result
}

async fn apikey(settings: &Settings, cmd: ApikeyCommand) -> anyhow::Result<()> {
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

async fn person(settings: &Settings, cmd: PersonCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = person_command(&store, cmd).await;
    store.close().await;
    result
}

async fn person_command(store: &Store, cmd: PersonCommand) -> anyhow::Result<()> {
    let parse = |a: &str| Address::parse(a).map_err(|e| anyhow::anyhow!("{a}: {e}"));
    let address = match cmd {
        PersonCommand::Consent {
            address,
            convenience,
            text,
            by,
        } => {
            let convenience = match convenience.to_ascii_lowercase().as_str() {
                "yes" | "true" => true,
                "no" | "false" => false,
                other => bail!("--convenience {other}: expected yes or no"),
            };
            let text = text.unwrap_or_else(|| CONVENIENCE_WARNING.to_owned());
            if text.trim().is_empty() || sealpost::domain::text::has_hidden_characters(&text) {
                bail!("--text: expected the plain text the person was shown");
            }
            let address = parse(&address)?;
            store
                .set_consent(Consent {
                    address: address.clone(),
                    convenience,
                    text,
                    by: format!("cli:{}", decided_by(by)?),
                })
                .await?;
            address
        }
        PersonCommand::Show { address } => parse(&address)?,
        PersonCommand::Add { address, fields } => {
            let address = parse(&address)?;
            if store.person(&address).await?.is_some() {
                bail!("{address} is already in the directory; use `person update`");
            }
            let kind = fields.kind.as_deref().unwrap_or("patient");
            let base = PersonDetails::new(kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?);
            let details = fields.apply(base)?;
            let p = store.put_person(&address, &details).await?;
            return print_json(person_json(&p));
        }
        PersonCommand::Update { address, fields } => {
            let address = parse(&address)?;
            let Some(existing) = store.person(&address).await? else {
                bail!("{address} is not in the directory; use `person add`");
            };
            let details = fields.apply(existing.details)?;
            let p = store.put_person(&address, &details).await?;
            return print_json(person_json(&p));
        }
        PersonCommand::List { kind } => {
            let kind = kind
                .map(|k| k.parse::<PersonKind>().map_err(|e| anyhow::anyhow!("{e}")))
                .transpose()?;
            for p in store.people(kind).await? {
                print_json(person_json(&p))?;
            }
            return Ok(());
        }
        PersonCommand::Remove { address } => {
            let address = parse(&address)?;
            store.remove_person(&address).await?;
            return print_json(json!({"removed": address.as_str()}));
        }
        PersonCommand::Passcode { address, clear, by } => {
            let address = parse(&address)?;
            let by = by.trim();
            if by.is_empty() {
                bail!("--by: say who sets the passcode");
            }
            let passcode = if clear {
                None
            } else {
                let mut text = String::new();
                std::io::stdin()
                    .read_line(&mut text)
                    .context("cannot read the passcode from standard input")?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            };
            store
                .set_passcode(&address, passcode.as_deref(), &format!("cli:{by}"))
                .await?;
            return print_json(json!({"address": address.as_str(), "passcode": !clear}));
        }
        PersonCommand::Unlock { address, by } => {
            let address = parse(&address)?;
            let by = by.trim();
            if by.is_empty() {
                bail!("--by: say who unlocks");
            }
            store.unlock_person(&address, &format!("cli:{by}")).await?;
            return print_json(json!({"unlocked": address.as_str()}));
        }
    };
    let Some(p) = store.person(&address).await? else {
        bail!("{address} is not in the directory");
    };
    print_json(person_json(&p))
}

impl PersonFields {
    /// `details` with the options given applied and checked.
    fn apply(self, mut d: PersonDetails) -> anyhow::Result<PersonDetails> {
        use sealpost::domain::person;
        if let Some(kind) = self.kind {
            d.kind = kind.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let check = |r: Result<Option<String>, String>| r.map_err(|e| anyhow::anyhow!(e));
        if let Some(v) = self.name {
            d.name = check(person::text("name", &v))?;
        }
        if let Some(v) = self.title {
            d.title = check(person::text("title", &v))?;
        }
        if let Some(v) = self.practice {
            d.practice = check(person::text("practice", &v))?;
        }
        if let Some(v) = self.birth_date {
            d.birth_date = check(person::birth_date(&v, &clock::Clock::system().today()))?;
        }
        if let Some(v) = self.mobile {
            d.mobile = check(person::mobile(&v))?;
        }
        if let Some(v) = self.notifications {
            d.notifications = v == "on";
        }
        if let Some(v) = self.status {
            d.status = v.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        d.check().map_err(|e| anyhow::anyhow!(e))?;
        Ok(d)
    }
}

/// A person as the CLI prints them: personal data opened (the CLI runs with the keyring).
fn person_json(p: &PersonView) -> serde_json::Value {
    let d = &p.details;
    json!({
        "person_id": p.id.to_string(),
        "address": p.address.as_str(),
        "kind": d.kind.as_str(),
        "name": d.name,
        "title": d.title,
        "practice": d.practice,
        "birth_date": d.birth_date,
        "mobile": d.mobile,
        "notifications": if d.notifications { "on" } else { "off" },
        "status": d.status.as_str(),
        "convenience": p.convenience.map(|c| if c { "yes" } else { "no" }),
        "convenience_at": p.convenience_at.map(clock::rfc3339),
        "convenience_text": p.convenience_text,
        "convenience_by": p.convenience_by,
        "created_at": clock::rfc3339(p.created_at),
        "updated_at": clock::rfc3339(p.updated_at),
    })
}

fn dkim_keygen(
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

fn read_body(arg: &BodyArg) -> anyhow::Result<String> {
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

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .context("cannot read the message body from stdin")?;
    Ok(buf)
}

fn participant(text: &str, role: Role) -> anyhow::Result<NewParticipant> {
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

fn thread_id(text: &str) -> anyhow::Result<ThreadId> {
    text.parse()
        .map_err(|e| anyhow::anyhow!("'{text}' is not a thread id: {e}"))
}

async fn thread(settings: &Settings, cmd: ThreadCommand) -> anyhow::Result<()> {
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

fn reply_text(file: Option<PathBuf>, explain: bool) -> anyhow::Result<()> {
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

async fn outbox_list(
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

fn held_id(text: &str) -> anyhow::Result<i64> {
    u64::from_str_radix(text, 16)
        .ok()
        .filter(|_| !text.is_empty() && text.len() <= 16)
        .and_then(|v| i64::try_from(v).ok())
        .with_context(|| format!("'{text}' is not a held message id (16 hexadecimal digits)"))
}

/// Who is deciding, for the audit trail: `--by`, else the invoking user.
fn decided_by(by: Option<String>) -> anyhow::Result<String> {
    let by = by
        .or_else(|| std::env::var("SUDO_USER").ok())
        .or_else(|| std::env::var("USER").ok())
        .filter(|b| !b.trim().is_empty())
        .context("say who decides with --by NAME (no $USER to take it from)")?;
    text_argument("--by", &by)?;
    Ok(by.trim().to_owned())
}

async fn held(settings: &Settings, cmd: HeldCommand) -> anyhow::Result<()> {
    let store = app::open_store(settings).await?;
    let result = held_command(settings, &store, cmd).await;
    store.close().await;
    result
}

fn held_json(h: &HeldSummary) -> serde_json::Value {
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

async fn held_command(settings: &Settings, store: &Store, cmd: HeldCommand) -> anyhow::Result<()> {
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

/// A text given on the command line that ends up in stored data or headers: no control
/// characters (a line break in a subject is a header injection waiting for a template).
fn text_argument(name: &str, value: &str) -> anyhow::Result<()> {
    if value.chars().any(char::is_control) {
        bail!("{name}: control characters (line breaks, tabs, escapes) are not allowed");
    }
    Ok(())
}

async fn inspect(settings: &Settings, input: &str) -> anyhow::Result<()> {
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
