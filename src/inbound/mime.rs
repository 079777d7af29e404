//! The one way Sealpost parses a message: mail-parser, with its panics contained.
//!
//! mail-parser 0.11.9 (the version this toolchain can build) panics on some malformed MIME
//! structures — the fuzzer found "Invalid part ID, could not find multipart" within seconds. A
//! stranger's bytes must never take anything down, so every parse goes through here: a panic
//! inside the parser becomes [`Unparsable::ParserFailed`], which the pipeline holds like any
//! other message it could not process, and which the CLI reports as an error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mail_parser::{Message, MessageParser};

/// Why bytes did not become a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unparsable {
    /// No header at all: not a message.
    #[error("not an email message")]
    NotAMessage,
    /// The parser failed on these bytes (a defect in it, caught).
    #[error("the MIME parser failed on this message")]
    ParserFailed,
}

/// Parses a whole message.
pub fn parse(raw: &[u8]) -> Result<Message<'_>, Unparsable> {
    match catch_unwind(AssertUnwindSafe(|| MessageParser::default().parse(raw))) {
        Ok(Some(m)) if !m.headers().is_empty() => Ok(m),
        Ok(_) => Err(Unparsable::NotAMessage),
        Err(_) => Err(Unparsable::ParserFailed),
    }
}

/// Parses only a header block (the returned headers of a delivery report).
pub fn parse_headers(raw: &[u8]) -> Result<Message<'_>, Unparsable> {
    match catch_unwind(AssertUnwindSafe(|| {
        MessageParser::default().parse_headers(raw)
    })) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => Err(Unparsable::NotAMessage),
        Err(_) => Err(Unparsable::ParserFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `scripts/fuzz.sh` (fixtures/hostile/mail-parser-part-id.eml): mail-parser
    /// panics on it. Here it is an error, not a panic.
    #[test]
    fn a_parser_panic_is_an_error() {
        let raw = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/hostile/mail-parser-part-id.eml"
        ))
        .unwrap();
        assert_eq!(parse(&raw).err(), Some(Unparsable::ParserFailed));
        assert_eq!(parse(b"").err(), Some(Unparsable::NotAMessage));
        assert!(parse(b"From: a@b\r\n\r\nhi").is_ok());
    }
}
