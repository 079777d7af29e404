//! The command line's grammar (clap): every command, its arguments and its help. Man pages
//! and completions are generated from these same definitions (`sealpost generate`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use sealpost::logging::LogFormat;

/// Email gateway for secure message threads.
#[derive(Parser)]
#[command(name = "sealpost", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// Configuration file (default: $SEALPOST_CONFIG, else /etc/sealpost/sealpost.toml if it
    /// exists, else built-in defaults).
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Shape of log lines on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
pub(crate) enum BackupCommand {
    /// Check a backup's checksum and open every thread and person in it with the keyring.
    Verify {
        /// The backup directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum SmsCommand {
    /// Print the latest text messages (codes), newest first: status, attempts, last error.
    /// Never the code or the number.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand)]
pub(crate) enum WebhookCommand {
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
pub(crate) enum ApikeyCommand {
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
pub(crate) enum HeldCommand {
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
pub(crate) enum OutboxCommand {
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
pub(crate) enum ThreadCommand {
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
pub(crate) struct NewArgs {
    /// The staff member opening the thread (`addr` or `Name <addr>`).
    #[arg(long, value_name = "ADDR")]
    pub(crate) from: String,
    /// A recipient; repeat for several. Each one outside the practice gets a conversation of
    /// their own (one JSON line each), unless --shared.
    #[arg(long, value_name = "ADDR", required = true)]
    pub(crate) to: Vec<String>,
    /// The recipients outside the practice read one conversation together (a family, a
    /// couple), each seeing everything written in it.
    #[arg(long)]
    pub(crate) shared: bool,
    /// The thread's subject (sealed at rest; never in secure-mode notifications).
    #[arg(long)]
    pub(crate) subject: String,
    /// The thread's mode (default: policy.default_mode).
    #[arg(long, value_parser = ["secure", "convenience"])]
    pub(crate) mode: Option<String>,
    #[command(flatten)]
    pub(crate) body: BodyArg,
}

#[derive(Args)]
pub(crate) struct BodyArg {
    /// Read the message body from FILE, or from stdin with `-` (the default when stdin is not
    /// a terminal).
    #[arg(long, value_name = "FILE")]
    pub(crate) body_file: Option<PathBuf>,
}

/// What `person add` and `person update` may set. On update, an option left out keeps what
/// is there and an empty value ("") clears it.
#[derive(clap::Args)]
pub(crate) struct PersonFields {
    /// patient, staff or colleague.
    #[arg(long, value_parser = ["patient", "staff", "colleague"])]
    pub(crate) kind: Option<String>,
    /// The name to address them by.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// A staff member's title ("Nurse", "Dr").
    #[arg(long)]
    pub(crate) title: Option<String>,
    /// A colleague's practice.
    #[arg(long)]
    pub(crate) practice: Option<String>,
    /// A patient's date of birth, YYYY-MM-DD (sealed in the database).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub(crate) birth_date: Option<String>,
    /// Mobile number in international form, +4915112345678 (sealed in the database).
    #[arg(long, value_name = "+E164")]
    pub(crate) mobile: Option<String>,
    /// off: they opted out of notifications (recorded as suppressed, never sent).
    #[arg(long, value_parser = ["on", "off"])]
    pub(crate) notifications: Option<String>,
    /// registered, invited or locked.
    #[arg(long, value_parser = ["registered", "invited", "locked"])]
    pub(crate) status: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum PersonCommand {
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
pub(crate) enum TokenCommand {
    /// Verify a token (or a `reply+TOKEN@domain` address) and print what it says.
    Inspect {
        /// A token or a reply address.
        token_or_address: String,
    },
}
