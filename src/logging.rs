//! Log output: readable on a terminal, without timestamps under journald (which stamps lines
//! itself), JSON on request.
//!
//! Log lines carry ids, counts, reasons and addresses' domains at most; never a subject, a body,
//! a token or key material. Fields are chosen at the call sites with that rule in mind.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "daemon", derive(clap::ValueEnum))]
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
    let shape = match (format, under_journald) {
        (LogFormat::Json, _) => Shape::Json,
        (LogFormat::Text, true) => Shape::Journal,
        (LogFormat::Text, false) => Shape::Text {
            ansi: std::io::stderr().is_terminal(),
        },
    };
    drop(tracing::dispatcher::set_global_default(dispatch(
        shape,
        filter,
        std::io::stderr,
    )));
}

/// How lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Text with timestamps (colour on a terminal).
    Text { ansi: bool },
    /// Text without timestamps (journald stamps lines itself).
    Journal,
    /// One JSON object per line.
    Json,
}

/// A subscriber writing lines of `shape` through [`Redacting`] to what `writer` makes: the
/// daemon's (stderr), or a file a test reads back.
pub fn dispatch<W>(shape: Shape, filter: EnvFilter, writer: W) -> tracing::Dispatch
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(writer))
        .with_target(false);
    match shape {
        Shape::Json => builder.json().flatten_event(true).into(),
        Shape::Journal => builder.without_time().with_ansi(false).into(),
        Shape::Text { ansi } => builder.with_ansi(ansi).into(),
    }
}

/// Every log line passes through here on its way out, whichever call site wrote it: the local
/// part of anything shaped like an address becomes `***` ([`redact_addresses`]). Call sites
/// are written to log no addresses at all; this is the net under them, so a field someone adds
/// later (an error text that quotes a recipient, a peer's reply) cannot put a patient's address
/// in the journal.
pub struct Redacting<W>(pub W);

impl<'w, W: MakeWriter<'w>> MakeWriter<'w> for Redacting<W> {
    type Writer = RedactingLine<W::Writer>;

    fn make_writer(&'w self) -> Self::Writer {
        RedactingLine {
            inner: self.0.make_writer(),
            line: Vec::new(),
        }
    }
}

/// One event's output, collected whole (the formatter writes an event in pieces) and redacted
/// once when it is flushed or dropped.
pub struct RedactingLine<W: std::io::Write> {
    inner: W,
    line: Vec<u8>,
}

impl<W: std::io::Write> RedactingLine<W> {
    fn emit(&mut self) -> std::io::Result<()> {
        if self.line.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.line);
        let clean = redact_addresses(&text);
        self.line.clear();
        self.inner.write_all(clean.as_bytes())?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> std::io::Write for RedactingLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.emit()
    }
}

impl<W: std::io::Write> Drop for RedactingLine<W> {
    fn drop(&mut self) {
        let _ = self.emit();
    }
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
    fn every_line_is_redacted_on_its_way_out() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let out = sink.clone();
        let d = dispatch(Shape::Json, EnvFilter::new("info"), move || sink.clone());
        tracing::dispatcher::with_default(&d, || {
            tracing::warn!(
                error = "550 <jane.doe@example.net> unknown",
                "relay said no"
            );
            tracing::info!("a reply from bob@example.org was filed");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            !text.contains("jane.doe") && !text.contains("bob@"),
            "{text}"
        );
        assert!(text.contains("***@example.net") && text.contains("***@example.org"));
    }

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
