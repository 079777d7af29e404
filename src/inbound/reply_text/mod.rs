//! Reply-text extraction: what the person typed, without the quoted history, the reply header,
//! or the signature.
//!
//! Order of business, most certain first:
//! 1. Sealpost's own marker line (carried by convenience notifications): everything from its
//!    quoted copy down is history, and so is the client's attribution line just above it.
//! 2. History blocks: an attribution line ("On … wrote:" and its translations, also wrapped over
//!    two or three lines), an Outlook header block (From/Sent/To/Subject in several languages,
//!    with or without a rule or "-----Original Message-----") — cut when what follows is the
//!    old message, kept when the person answered between the quoted lines (an inline reply).
//! 3. A trailing quoted block and its attribution.
//! 4. A signature after `-- `, and mobile sign-offs ("Sent from my iPhone"), only at the end.
//!
//! When in doubt the text is kept: losing a word of a patient's answer is worse than filing a
//! quoted line too many. Every step is linear in the input (the `regex` crate, no backtracking).

mod attribution;
mod copies;
mod endings;
mod extract;
mod flowed;
mod headers;
pub mod html;
pub mod known;
mod lines;
pub mod patterns;
mod prepare;
mod rule;
mod shapes;
pub mod vocabulary;

pub use prepare::MAX_BLANK_RUN;

use std::fmt;

use mail_parser::{MimeHeaders, PartType};

use flowed::unflow;
pub use known::Known;
pub use rule::Rule;

/// Why a line was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Sealpost's reply marker and what follows it.
    Marker,
    /// A copy of a message Sealpost sent, recognised by its words.
    SentCopy,
    /// A reply header: attribution line, "Original Message" line, header block, rule.
    ReplyHeader,
    /// The quoted or copied earlier message.
    History,
    /// A signature after a `-- ` delimiter.
    Signature,
    /// A mobile or web-client sign-off.
    SignOff,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Marker => "sealpost marker and the notification below it",
            Reason::SentCopy => "copy of a message sealpost sent",
            Reason::ReplyHeader => "reply header",
            Reason::History => "quoted history",
            Reason::Signature => "signature",
            Reason::SignOff => "sign-off",
        })
    }
}

/// The result: the reply text and, for `--explain`, every removed line with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extraction {
    pub text: String,
    /// Every removed line, in order.
    pub removed: Vec<Removed>,
}

/// A line extraction removed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    /// 1-based line number in the body (after format=flowed lines are joined and a header
    /// run into a rule is put on a line of its own).
    pub line: usize,
    /// The rule that removed it (its [`Rule::reason`] says what kind of text that was).
    pub rule: Rule,
    /// The line.
    pub text: String,
}

/// Extracts the reply from a whole RFC 5322 message: its first text/plain part, or its HTML
/// converted to text (with client quote containers dropped) when it has no plain part.
/// `None` when the message has no text at all, or cannot be parsed.
pub fn from_message(raw: &[u8]) -> Option<Extraction> {
    let message = crate::inbound::mime::parse(raw).ok()?;
    Some(from_body(&body_of(&message)?))
}

/// The text of a parsed message as extraction wants it: plain text preferred, format=flowed
/// unwrapped, HTML converted.
pub fn body_of(message: &mail_parser::Message<'_>) -> Option<String> {
    for id in &message.text_body {
        let part = message.part(*id)?;
        if let PartType::Text(t) = &part.body {
            let ct = part.content_type();
            let param = |name: &str| {
                ct.and_then(|c| c.attribute(name)).is_some_and(|v| {
                    v.eq_ignore_ascii_case(if name == "format" { "flowed" } else { "yes" })
                })
            };
            let text = t.replace("\r\n", "\n");
            return Some(if param("format") {
                unflow(&text, param("delsp"))
            } else {
                text
            });
        }
    }
    for id in &message.html_body {
        if let PartType::Html(h) = &message.part(*id)?.body {
            return Some(html::to_text(h));
        }
    }
    None
}

/// Extracts the reply from a decoded text body.
pub fn from_body(body: &str) -> Extraction {
    from_body_knowing(body, &Known::default())
}

/// Only the reply text of a decoded body (what the pipeline files), without the list of
/// removed lines, which costs a copy of every quoted line.
pub fn text_of(body: &str, known: &Known) -> String {
    extract::extract(body, known, false).text
}

/// Extracts the reply from a decoded text body, also recognising copies of `known` (the
/// messages Sealpost sent this person) wherever they appear.
pub fn from_body_knowing(body: &str, known: &Known) -> Extraction {
    extract::extract(body, known, true)
}

#[cfg(test)]
mod no_loss;
#[cfg(test)]
mod tests;
