//! Classifying inbound mail before anything is filed: auto-replies, bounces and delivery status
//! notifications, and our own notifications coming back (loops). Pure; no I/O.

use std::sync::LazyLock;

use mail_parser::{HeaderValue, Message, MimeHeaders, PartType};
use regex::Regex;

use crate::domain::mail::LOOP_HEADER;

/// What kind of message this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Written by a person: a candidate reply.
    Personal,
    /// An automatic reply (out of office, vacation, list traffic); the reason says which sign.
    AutoReply(&'static str),
    /// A bounce or delivery status notification.
    Bounce(Dsn),
    /// A message Sealpost (this or another instance) sent.
    Loop,
}

/// What a delivery status notification reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dsn {
    /// `failed`, `delayed`, `delivered`, `relayed`, `expanded`, or empty when unknown.
    pub action: String,
    /// The status code, e.g. `5.1.1`.
    pub status: Option<String>,
    /// The remote server's diagnostic, e.g. `smtp; 550 5.1.1 no such user`.
    pub diagnostic: Option<String>,
    /// The Message-ID of the message it is about, when the report includes its headers.
    pub original_message_id: Option<String>,
    /// A spam complaint: an ARF feedback report (RFC 5965) from the recipient's provider,
    /// with its Feedback-Type (`abuse`, `fraud`, …).
    pub complaint: Option<String>,
}

impl Dsn {
    /// Whether the report says delivery failed for good.
    pub fn is_failure(&self) -> bool {
        self.action.eq_ignore_ascii_case("failed")
            || (self.action.is_empty()
                && self.status.as_deref().is_some_and(|s| s.starts_with('5')))
    }
}

static AUTO_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*((re|aw|sv|fw|fwd|wg)\s*:\s*)*(out of (the )?office|automatic reply|auto[- ]?reply|autoreply|auto[- ]?response|vacation|away from (the )?office|abwesenheit|automatische antwort|r[ée]ponse automatique|absence|respuesta autom[áa]tica|fuera de la oficina|risposta automatica|fuori sede|automatisch antwoord|afwezig|resposta autom[áa]tica|fora do escrit[óo]rio|fr[åa]nvaro|autosvar|automaattinen vastaus|odpowied[źz] automatyczna|автоматический ответ|自動応答|自动回复|自動回覆)",
    )
    .expect("built-in pattern compiles")
});

/// Classifies a parsed message. `null_sender` is true for `MAIL FROM:<>` (or an empty
/// Return-Path), the reverse path of every bounce.
pub fn classify(m: &Message<'_>, null_sender: bool) -> Class {
    if m.header_raw(LOOP_HEADER).is_some() {
        return Class::Loop;
    }
    if let Some(dsn) = delivery_report(m) {
        return Class::Bounce(dsn);
    }
    if null_sender {
        return Class::Bounce(Dsn::default());
    }
    let header = |name: &str| m.header_raw(name).map(|v| v.trim().to_ascii_lowercase());
    if let Some(v) = header("Auto-Submitted")
        && v.split(';').next().is_some_and(|w| w.trim() != "no")
    {
        return Class::AutoReply("auto-submitted");
    }
    if header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Autoresponse").is_some()
    {
        return Class::AutoReply("x-autoreply");
    }
    if let Some(p) = header("Precedence")
        && ["bulk", "junk", "list", "auto_reply"].contains(&p.as_str())
    {
        return Class::AutoReply("precedence");
    }
    if header("List-Id").is_some() {
        return Class::AutoReply("list-id");
    }
    if m.subject().is_some_and(|s| AUTO_SUBJECT.is_match(s)) {
        return Class::AutoReply("auto-reply-subject");
    }
    Class::Personal
}

/// Parses a `multipart/report; report-type=delivery-status` message.
fn delivery_report(m: &Message<'_>) -> Option<Dsn> {
    let root = m.root_part();
    let ct = root.content_type()?;
    let is_report = ct.ctype().eq_ignore_ascii_case("multipart")
        && ct
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"));
    if !is_report {
        return None;
    }
    let mut dsn = Dsn::default();
    for part in &m.parts {
        let Some(pct) = part.content_type() else {
            continue;
        };
        let sub = pct.subtype().unwrap_or("").to_ascii_lowercase();
        let ty = pct.ctype().to_ascii_lowercase();
        match (ty.as_str(), sub.as_str()) {
            ("message", "delivery-status") => {
                let text = match &part.body {
                    PartType::Text(t) => t.to_string(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    PartType::Message(inner) => {
                        String::from_utf8_lossy(inner.raw_message()).into_owned()
                    }
                    _ => String::new(),
                };
                read_status_fields(&text, &mut dsn);
            }
            ("message", "feedback-report") => {
                let text = match &part.body {
                    PartType::Text(t) => t.to_string(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    _ => String::new(),
                };
                let kind = text
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.trim()
                            .eq_ignore_ascii_case("feedback-type")
                            .then(|| value.trim().to_ascii_lowercase())
                    })
                    .filter(|v| !v.is_empty() && v.len() <= 40)
                    .unwrap_or_else(|| "abuse".to_owned());
                dsn.complaint = Some(kind);
            }
            ("message", "rfc822") | ("message", "global") => {
                if let PartType::Message(inner) = &part.body {
                    dsn.original_message_id = inner.message_id().map(str::to_owned);
                }
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers") => {
                let text = match &part.body {
                    PartType::Text(t) => t.to_string(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => {
                        String::from_utf8_lossy(b).into_owned()
                    }
                    _ => String::new(),
                };
                if let Ok(inner) = crate::inbound::mime::parse_headers(text.as_bytes()) {
                    dsn.original_message_id = inner.message_id().map(str::to_owned);
                }
            }
            _ => {}
        }
    }
    Some(dsn)
}

/// Reads the first per-recipient block's Action, Status and Diagnostic-Code.
fn read_status_fields(text: &str, dsn: &mut Dsn) {
    let mut last_field: Option<&str> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            if last_field == Some("diagnostic-code")
                && let Some(d) = dsn.diagnostic.as_mut()
            {
                d.push(' ');
                d.push_str(line.trim());
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            last_field = None;
            continue;
        };
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        match name.as_str() {
            "action" if dsn.action.is_empty() => dsn.action = value.to_ascii_lowercase(),
            "status" if dsn.status.is_none() => dsn.status = Some(value.to_owned()),
            "diagnostic-code" if dsn.diagnostic.is_none() => {
                dsn.diagnostic = Some(value.to_owned())
            }
            _ => {}
        }
        last_field = Some(match name.as_str() {
            "diagnostic-code" => "diagnostic-code",
            _ => "other",
        });
    }
}

/// Message-IDs in In-Reply-To and References, most recent first.
pub fn referenced_ids(m: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for v in [m.in_reply_to(), m.references()] {
        match v {
            HeaderValue::Text(t) => out.push(t.to_string()),
            HeaderValue::TextList(l) => out.extend(l.iter().rev().map(|s| s.to_string())),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    fn class(raw: &str, null: bool) -> Class {
        classify(
            &MessageParser::default().parse(raw.as_bytes()).unwrap(),
            null,
        )
    }

    const PERSONAL: &str = "From: jane@example.test\r\nSubject: Re: Lab results\r\nX-Auto-Response-Suppress: All\r\n\r\nThanks\r\n";

    #[test]
    fn personal_mail_even_with_outlook_suppress_header() {
        assert_eq!(class(PERSONAL, false), Class::Personal);
        assert_eq!(
            class(
                &PERSONAL.replace("Subject:", "Auto-Submitted: no\r\nSubject:"),
                false
            ),
            Class::Personal
        );
    }

    #[test]
    fn auto_replies() {
        for (extra, why) in [
            ("Auto-Submitted: auto-replied\r\n", "auto-submitted"),
            ("X-Autoreply: yes\r\n", "x-autoreply"),
            ("Precedence: bulk\r\n", "precedence"),
            ("List-Id: <list.example.test>\r\n", "list-id"),
        ] {
            assert_eq!(
                class(&format!("{extra}{PERSONAL}"), false),
                Class::AutoReply(why),
                "{extra}"
            );
        }
        for subject in [
            "Out of Office: Lab results",
            "Automatic reply: x",
            "Abwesenheitsnotiz: x",
            "Réponse automatique : x",
            "自動応答: x",
            "Re: Respuesta automática",
        ] {
            let raw = format!("From: jane@example.test\r\nSubject: {subject}\r\n\r\nI am away\r\n");
            assert_eq!(
                class(&raw, false),
                Class::AutoReply("auto-reply-subject"),
                "{subject}"
            );
        }
    }

    #[test]
    fn loops_and_bounces() {
        assert_eq!(
            class(
                &format!("X-Sealpost-Loop: reply.example.test\r\n{PERSONAL}"),
                false
            ),
            Class::Loop
        );
        assert_eq!(class(PERSONAL, true), Class::Bounce(Dsn::default()));
        let dsn = "From: MAILER-DAEMON@mx.example.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; jane@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <jane@example.test>:\r\n    no such user\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: noreply@example.test\r\nMessage-ID: <sp.n.00000000000000ab@reply.example.test>\r\nSubject: New secure message\r\n--b--\r\n";
        match class(dsn, true) {
            Class::Bounce(d) => {
                assert!(d.is_failure());
                assert_eq!(d.status.as_deref(), Some("5.1.1"));
                assert_eq!(
                    d.diagnostic.as_deref(),
                    Some("smtp; 550 5.1.1 <jane@example.test>: no such user")
                );
                assert_eq!(
                    d.original_message_id.as_deref(),
                    Some("sp.n.00000000000000ab@reply.example.test")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn references_most_recent_first() {
        let raw = "From: a@b\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x> <c@x>\r\n\r\nhi\r\n";
        let m = MessageParser::default().parse(raw.as_bytes()).unwrap();
        assert_eq!(referenced_ids(&m), vec!["c@x", "c@x", "b@x", "a@x"]);
    }
}
