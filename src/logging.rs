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
