//! Reading a message: parsing and classifying the bytes, off the async workers and within
//! explicit caps, before the pipeline asks the database anything.

use mail_parser::{Address as HeaderAddress, HeaderValue};
use sha2::{Digest, Sha256};

use super::super::classify::{Class, classify, referenced_ids};
use super::super::mime::{self, Unparsable};
use super::super::reply_text;
use crate::crypto::token::token_in_address;
use crate::domain::Address;
use crate::domain::mail::REPLY_MARKER;

/// What the pipeline reads from the raw bytes before it asks the database anything. Owned, so
/// it can be made on the blocking pool.
pub(super) struct Parsed {
    /// The Message-ID header, or a digest of the message when it has none: the dedupe key.
    pub(super) header_id: String,
    pub(super) class: Class,
    /// The first address in `From:`, if it is one Sealpost accepts.
    pub(super) from: Option<Address>,
    /// Mailboxes named by every `From:` field together (one, for a reply a person wrote).
    pub(super) from_mailboxes: usize,
    /// Reply tokens in the recipient headers (Delivered-To, X-Original-To, To, Cc).
    pub(super) header_tokens: Vec<String>,
    /// Where the final MTA said it delivered (Delivered-To, X-Original-To): for the IMAP door,
    /// the only record of the envelope recipient.
    pub(super) delivered_to: Vec<String>,
    /// In-Reply-To and References, most recent first.
    pub(super) references: Vec<String>,
    /// The text body as extraction wants it (plain, unflowed, or converted from HTML).
    pub(super) body: Option<String>,
    /// The reply text, when Sealpost's marker line settles where our notification starts.
    pub(super) marked: Option<String>,
}

impl Parsed {
    /// Parses and classifies; `None` for bytes that are not a message. Linear in the input.
    pub(super) fn read(raw: &[u8], null_sender: bool, reply_domain: &str) -> Read {
        if let Err(why) = within_caps(raw) {
            return Read::TooComplex(why);
        }
        match Parsed::parse(raw, null_sender, reply_domain) {
            Ok(p) => Read::Parsed(Box::new(p)),
            Err(Unparsable::NotAMessage) => Read::Malformed,
            Err(Unparsable::ParserFailed) => Read::ParserFailed,
        }
    }

    pub(super) fn parse(
        raw: &[u8],
        null_sender: bool,
        reply_domain: &str,
    ) -> Result<Parsed, Unparsable> {
        // A defect unit tests can provoke, to show that a panic holds only its own message.
        #[cfg(test)]
        if raw
            .windows(super::tests::PANIC_TRIGGER.len())
            .any(|w| w == super::tests::PANIC_TRIGGER)
        {
            panic!("provoked by a test");
        }
        let message = mime::parse(raw)?;
        let header_id = message
            .message_id()
            .map(|m| m.chars().take(998).collect())
            .unwrap_or_else(|| {
                format!(
                    "sha256:{}",
                    data_encoding::HEXLOWER.encode(&Sha256::digest(raw))
                )
            });
        let mut header_tokens = Vec::new();
        let mut delivered_to = Vec::new();
        for name in ["Delivered-To", "X-Original-To", "To", "Cc"] {
            for value in message.header_values(name) {
                for addr in header_addresses(value) {
                    if let Some(t) = token_in_address(&addr, reply_domain) {
                        header_tokens.push(t.to_owned());
                    }
                    if matches!(name, "Delivered-To" | "X-Original-To") {
                        delivered_to.push(addr);
                    }
                }
            }
        }
        let body = reply_text::body_of(&message);
        let marked = body
            .as_deref()
            .filter(|b| b.contains(REPLY_MARKER))
            .map(|b| reply_text::text_of(b, &reply_text::Known::default()));
        Ok(Parsed {
            header_id,
            class: classify(&message, null_sender),
            from: first_address(message.from()),
            from_mailboxes: message
                .header_values("From")
                .map(|v| match v {
                    HeaderValue::Address(a) => a.iter().count().max(1),
                    _ => 1,
                })
                .sum(),
            header_tokens,
            delivered_to,
            references: referenced_ids(&message),
            body,
            marked,
        })
    }
}

/// What reading the bytes gave.
pub(super) enum Read {
    Parsed(Box<Parsed>),
    /// Not a message at all.
    Malformed,
    /// The MIME parser failed on it (a defect in the parser, contained).
    ParserFailed,
    /// Over one of the structural caps (see [`within_caps`]).
    TooComplex(&'static str),
}

/// Header fields in the message's own header block, at most.
pub const MAX_HEADERS: usize = 1000;
/// Lines that could be MIME boundaries (`--` and a token), at most: parts and their ends.
pub const MAX_BOUNDARY_LINES: usize = 10_000;
/// `multipart/` content types, at most: bounds how deep parts nest.
pub const MAX_MULTIPARTS: usize = 100;

/// Explicit caps on a message's structure, checked in one pass over the bytes before anything
/// parses them. Parsing is linear anyway; the caps keep what a single message can make the
/// parser build (header lists, part trees, nesting) small whatever the size limit is set to.
/// No reply a person writes comes near them.
pub fn within_caps(raw: &[u8]) -> Result<(), &'static str> {
    let mut headers = 0;
    let mut in_head = true;
    let mut boundaries = 0;
    let mut multiparts = 0;
    for line in raw.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if in_head {
            if line.is_empty() {
                in_head = false;
            } else if !line.starts_with(b" ") && !line.starts_with(b"\t") {
                headers += 1;
                if headers > MAX_HEADERS {
                    return Err("too-many-headers");
                }
            }
        }
        if line.len() > 2
            && line.starts_with(b"--")
            && line[2..]
                .first()
                .is_some_and(|b| b.is_ascii_graphic() && *b != b'-')
        {
            boundaries += 1;
            if boundaries > MAX_BOUNDARY_LINES {
                return Err("too-many-parts");
            }
        }
        if line.len() >= 22 && line[..13].eq_ignore_ascii_case(b"content-type:") {
            let value = line[13..].trim_ascii_start();
            if value.len() >= 10 && value[..10].eq_ignore_ascii_case(b"multipart/") {
                multiparts += 1;
                if multiparts > MAX_MULTIPARTS {
                    return Err("too-deeply-nested");
                }
            }
        }
    }
    Ok(())
}

fn header_addresses(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Address(a) => a
            .iter()
            .filter_map(|x| x.address().map(str::to_owned))
            .collect(),
        HeaderValue::Text(t) => vec![t.trim().to_owned()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
}

fn first_address(a: Option<&HeaderAddress<'_>>) -> Option<Address> {
    a?.first()?.address().and_then(|s| Address::parse(s).ok())
}
