//! Log output: readable on a terminal, without timestamps under journald (which stamps lines
//! itself), JSON on request.
//!
//! Log lines carry ids, counts, reasons and addresses' domains at most; never a subject, a body,
//! a token or key material. Fields are chosen at the call sites with that rule in mind.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text; timestamps unless running under journald.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber writing to stderr at `default_level`, which `RUST_LOG`
/// overrides. Calling it twice is harmless (the second call does nothing).
pub fn init(format: LogFormat, default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match (format, under_journald) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, true) => builder.without_time().with_ansi(false).try_init(),
        (LogFormat::Text, false) => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    drop(result);
}

/// Replaces the local part of every address in `text` with `***`: relay replies such as
/// "550 5.1.1 <jane.doe@example.net>: Recipient address rejected" name the person, and the
/// domain is all an operator needs to see in a log.
pub fn redact_addresses(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before = &rest[..at];
        // The local part runs back to the last character that cannot be in one.
        let start = before
            .rfind(|c: char| c.is_whitespace() || "<>()[],;:=\"'".contains(c))
            .map_or(0, |i| {
                i + before[i..].chars().next().map_or(1, char::len_utf8)
            });
        out.push_str(&before[..start]);
        if start < before.len() {
            out.push_str("***");
        }
        out.push('@');
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out
}

/// Replaces the default panic message (which quotes whatever the panic was about — a slice of
/// a patient's reply, for instance) with one log line naming only the thread and the source
/// location. The daemon catches panics per message and carries on; this line is how an
/// operator learns that one happened, and where.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "unknown".into());
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        tracing::error!(
            %location,
            thread,
            "internal error (panic); its message is withheld because it may quote the input"
        );
        // Without a subscriber (early start-up), still say something on stderr.
        if !tracing::dispatcher::has_been_set() {
            eprintln!("sealpost: internal error (panic) at {location} in thread {thread}");
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_lose_their_local_part() {
        assert_eq!(
            redact_addresses("550 5.1.1 <jane.doe@example.net>: Recipient address rejected"),
            "550 5.1.1 <***@example.net>: Recipient address rejected"
        );
        assert_eq!(
            redact_addresses("to=jane@example.net, and bob+x@y.test"),
            "to=***@example.net, and ***@y.test"
        );
        assert_eq!(
            redact_addresses("250 2.0.0 Ok: queued as 4A"),
            "250 2.0.0 Ok: queued as 4A"
        );
        assert_eq!(redact_addresses("@x"), "@x");
        assert_eq!(redact_addresses("ü@x"), "***@x");
    }
}
