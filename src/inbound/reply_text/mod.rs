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

pub mod html;
pub mod patterns;

use std::fmt;

use mail_parser::{MessageParser, MimeHeaders, PartType};

use crate::outbound::compose::REPLY_MARKER;
use patterns::*;

/// Why a line was removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Sealpost's reply marker and what follows it.
    Marker,
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
    /// (1-based line number in the body, reason, the line).
    pub removed: Vec<(usize, Reason, String)>,
}

/// Extracts the reply from a whole RFC 5322 message: its first text/plain part, or its HTML
/// converted to text (with client quote containers dropped) when it has no plain part.
/// `None` when the message has no text at all.
pub fn from_message(raw: &[u8]) -> Option<Extraction> {
    let message = MessageParser::default().parse(raw)?;
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

/// Joins the soft line breaks of RFC 3676 format=flowed text.
fn unflow(text: &str, delsp: bool) -> String {
    if let Some(body) = text.strip_suffix('\n') {
        return unflow(body, delsp) + "\n";
    }
    let mut out = String::with_capacity(text.len());
    let mut joining = false;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let mut content = &line[depth..];
        if joining {
            content = content.strip_prefix(' ').unwrap_or(content);
        } else {
            out.push_str(&line[..depth]);
            if depth > 0 && !content.starts_with(' ') {
                out.push(' ');
            }
        }
        let soft = content.ends_with(' ') && content != "-- ";
        if soft {
            out.push_str(if delsp {
                &content[..content.len() - 1]
            } else {
                content
            });
        } else {
            out.push_str(content);
            out.push('\n');
        }
        joining = soft;
    }
    if out.ends_with('\n') && !text.ends_with('\n') {
        out.pop();
    }
    out
}

fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Blank, or only invisible characters (zero-width spaces, Gmail's U+1427 tracking mark).
fn is_blank(line: &str) -> bool {
    line.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{1427}'
            )
    })
}

/// A line without its quote marks.
fn dequote(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
}

/// Extracts the reply from a decoded text body.
pub fn from_body(body: &str) -> Extraction {
    let body = body.replace("\r\n", "\n");
    let lines: Vec<&str> = body.split('\n').collect();
    let mut removed: Vec<Option<Reason>> = vec![None; lines.len()];
    let mut end = lines.len();

    // 1. Our marker.
    if let Some(m) = lines.iter().position(|l| dequote(l).contains(REPLY_MARKER)) {
        mark(&mut removed, m, lines.len(), Reason::Marker);
        let top = strip_header_above(&lines, &mut removed, m);
        let typed_above = (0..top).any(|i| !is_blank(lines[i]));
        if typed_above {
            end = top;
        } else if let Some(last_quoted) = (m..lines.len()).rev().find(|i| is_quoted(lines[*i])) {
            // Bottom-posted: the person wrote below the quoted notification.
            for r in removed.iter_mut().skip(last_quoted + 1) {
                *r = None;
            }
        }
    }

    // 2. History blocks.
    let mut i = 0;
    while i < end {
        if removed[i].is_some() || is_quoted(lines[i]) {
            i += 1;
            continue;
        }
        if FORWARD.is_match(lines[i]) {
            break; // a forward the person chose to send: keep it whole
        }
        let Some(span) = header_at(&lines, i, end) else {
            i += 1;
            continue;
        };
        let after = skip_blank(&lines, i + span, end);
        if after < end && is_quoted(lines[after]) {
            let quote_end = quoted_run_end(&lines, after, end);
            let answered_below = (quote_end..end).any(|j| {
                !is_blank(lines[j])
                    && !is_quoted(lines[j])
                    && !is_sign_off(lines[j])
                    && !SIGNATURE_DELIMITER.is_match(lines[j])
            });
            if answered_below && !only_signature(&lines, quote_end, end) {
                let typed_above = (0..i).any(|j| !is_blank(lines[j]) && removed[j].is_none());
                let more_quotes = (quote_end..end).any(|j| is_quoted(lines[j]));
                if !typed_above && !more_quotes {
                    // Bottom-posted: one quoted block on top, the answer below it. Dropping the
                    // header and the quote loses none of the person's words.
                    mark(&mut removed, i, i + span, Reason::ReplyHeader);
                    mark(&mut removed, i + span, quote_end, Reason::History);
                    i = quote_end;
                    continue;
                }
                // An inline reply: answers between quoted lines; the quotes are context the
                // person kept.
                i = quote_end;
                continue;
            }
        }
        let mut start = i;
        while start > 0 && (is_blank(lines[start - 1]) || SEPARATOR.is_match(lines[start - 1])) {
            start -= 1;
        }
        if (0..start).all(|j| is_blank(lines[j]) || removed[j].is_some()) && after < end {
            // Nothing typed above the header: a pasted or forwarded message. Keep its text,
            // drop only the header.
            mark(&mut removed, i, i + span, Reason::ReplyHeader);
            i += span;
            continue;
        }
        mark(&mut removed, i, i + span, Reason::ReplyHeader);
        mark(&mut removed, i + span, end, Reason::History);
        end = start;
        break;
    }

    // 3. A trailing quoted block and its attribution.
    let mut j = end;
    while j > 0 && (is_blank(lines[j - 1]) || is_quoted(lines[j - 1])) && removed[j - 1].is_none() {
        j -= 1;
    }
    if (j..end).any(|k| is_quoted(lines[k]))
        && (0..j).any(|k| !is_blank(lines[k]) && removed[k].is_none())
    {
        mark(&mut removed, j, end, Reason::History);
        end = strip_header_above(&lines, &mut removed, j);
    }

    // 4. Signature and sign-offs at the end.
    let last_content = |removed: &[Option<Reason>], end: usize| {
        (0..end)
            .rev()
            .find(|k| removed[*k].is_none() && !is_blank(lines[*k]))
    };
    // A mailing-list footer under a rule ("____", then the list's name and address).
    if let Some(s) = (0..end)
        .rev()
        .find(|k| removed[*k].is_none() && SEPARATOR.is_match(lines[*k]))
        && short_unquoted_tail(&lines, s + 1, end, 6)
        && (0..s).any(|k| !is_blank(lines[k]) && removed[k].is_none())
    {
        mark(&mut removed, s, end, Reason::Signature);
        end = s;
    }
    if let Some(s) = (0..end)
        .rev()
        .find(|k| removed[*k].is_none() && SIGNATURE_DELIMITER.is_match(lines[*k]))
        && only_signature(&lines, s, end)
        && (0..s).any(|k| !is_blank(lines[k]) && removed[k].is_none())
    {
        mark(&mut removed, s, end, Reason::Signature);
        end = s;
    }
    while let Some(k) = last_content(&removed, end) {
        let sign_off = is_sign_off(lines[k]) || DASH_NAME.is_match(lines[k]);
        if !sign_off || !(0..k).any(|p| !is_blank(lines[p]) && removed[p].is_none()) {
            break;
        }
        removed[k] = Some(Reason::SignOff);
        end = k;
    }

    let kept: Vec<&str> = (0..lines.len())
        .filter(|k| removed[*k].is_none() && *k < end.max(first_bottom_kept(&removed, end)))
        .map(|k| lines[k])
        .collect();
    // Blank lines and a lone rule at the very end carry nothing (a rule with nothing below it
    // is what is left of a cut reply header).
    let mut kept = kept;
    while kept
        .last()
        .is_some_and(|l| is_blank(l) || SEPARATOR.is_match(l))
    {
        kept.pop();
    }
    let text = kept.join("\n").trim_matches('\n').trim_end().to_owned();
    let removed = removed
        .iter()
        .enumerate()
        .filter_map(|(k, r)| r.map(|r| (k + 1, r, lines[k].to_owned())))
        .collect();
    Extraction { text, removed }
}

/// For bottom-posted replies the kept lines sit after `end`'s usual bound; keep them.
fn first_bottom_kept(removed: &[Option<Reason>], end: usize) -> usize {
    if removed.iter().skip(end).any(|r| r.is_none()) && removed.contains(&Some(Reason::Marker)) {
        removed.len()
    } else {
        end
    }
}

fn mark(removed: &mut [Option<Reason>], from: usize, to: usize, reason: Reason) {
    for r in removed.iter_mut().take(to).skip(from) {
        r.get_or_insert(reason);
    }
}

fn skip_blank(lines: &[&str], mut i: usize, end: usize) -> usize {
    while i < end && is_blank(lines[i]) {
        i += 1;
    }
    i
}

/// End (exclusive) of the quoted run starting at `i`, blank lines inside included.
fn quoted_run_end(lines: &[&str], mut i: usize, end: usize) -> usize {
    let mut last = i;
    while i < end && (is_quoted(lines[i]) || is_blank(lines[i])) {
        if is_quoted(lines[i]) {
            last = i;
        }
        i += 1;
    }
    last + 1
}

/// Whether lines `from..end` are at most `max` short, unquoted, non-blank lines (and some).
fn short_unquoted_tail(lines: &[&str], from: usize, end: usize, max: usize) -> bool {
    let content: Vec<&str> = (from..end)
        .map(|k| lines[k])
        .filter(|l| !is_blank(l))
        .collect();
    !content.is_empty()
        && content.len() <= max
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 100)
}

/// Whether lines `from..end` look like a signature: a few short unquoted lines.
fn only_signature(lines: &[&str], from: usize, end: usize) -> bool {
    let content: Vec<&str> = (from..end)
        .map(|k| lines[k])
        .filter(|l| !is_blank(l))
        .collect();
    !content.is_empty()
        && content.len() <= 12
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 100)
        && (SIGNATURE_DELIMITER.is_match(content[0]) || content.iter().all(|l| is_sign_off(l)))
}

/// Removes the reply header (attribution or header block) that ends right above line `at`,
/// with the blank lines and rules around it; returns the new end of the kept text.
fn strip_header_above(lines: &[&str], removed: &mut [Option<Reason>], at: usize) -> usize {
    let mut top = at;
    while top > 0 && (is_blank(lines[top - 1]) || dequote(lines[top - 1]).is_empty()) {
        top -= 1;
    }
    // A single, wrapped (two or three lines) attribution, or a header block.
    // The longest span that is an attribution and starts like one (or whose shorter tail is
    // not one), so a wrapped attribution is removed whole and the line above it is kept.
    for span in (1..=3usize).rev() {
        if top < span || lines[top - span..top].iter().any(|l| is_blank(l)) {
            continue;
        }
        let first = top - span;
        if is_attribution(&join(&lines[first..top]))
            && (span == 1
                || ATTRIBUTION_OPENER.is_match(lines[first])
                || !is_attribution(&join(&lines[first + 1..top])))
        {
            mark(removed, first, at, Reason::ReplyHeader);
            top = first;
            break;
        }
    }
    // Outlook-style header block right above (From/Sent/To/Subject lines).
    let mut k = top;
    while k > 0 && (HEADER_OTHER.is_match(lines[k - 1]) || HEADER_FROM.is_match(lines[k - 1])) {
        k -= 1;
    }
    if k < top && HEADER_FROM.is_match(lines[k]) {
        mark(removed, k, at, Reason::ReplyHeader);
        top = k;
    }
    while top > 0
        && (is_blank(lines[top - 1])
            || SEPARATOR.is_match(lines[top - 1])
            || ORIGINAL_MESSAGE.is_match(lines[top - 1]))
    {
        top -= 1;
        if !is_blank(lines[top]) {
            removed[top] = Some(Reason::ReplyHeader);
        }
    }
    top
}

fn join(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

/// Whether a line is a mobile or web-client sign-off (short lines only).
fn is_sign_off(line: &str) -> bool {
    line.len() <= 80 && SIGN_OFF.is_match(line)
}

/// Whether `text` (a line, or wrapped lines joined) is an attribution line, also when wrapped
/// in rules ("---- On … wrote ----").
fn is_attribution(text: &str) -> bool {
    if text.len() > MAX_HEADER_LINE {
        return false;
    }
    let bare = text.trim_matches(|c: char| c == '-' || c == '_' || c.is_whitespace());
    // "---- Jane Doe wrote ----" (Android clients): a rule-wrapped line ending in "wrote".
    let ruled_wrote = text.trim_start().starts_with("--")
        && bare.len() < 80
        && bare.to_ascii_lowercase().ends_with(" wrote");
    ruled_wrote
        || ATTRIBUTION.is_match(text)
        || ATTRIBUTION.is_match(bare)
        || DATED_ADDRESS_HEADER.is_match(text)
}

/// If a reply header starts at line `i`, how many lines it spans.
fn header_at(lines: &[&str], i: usize, end: usize) -> Option<usize> {
    let line = lines[i].trim();
    if line.is_empty() || line.len() > MAX_HEADER_LINE {
        return None;
    }
    if ORIGINAL_MESSAGE.is_match(line) {
        let next = skip_blank(lines, i + 1, end);
        return Some(next - i + header_block_len(lines, next, end).unwrap_or(0));
    }
    if SEPARATOR.is_match(line) {
        let next = skip_blank(lines, i + 1, end);
        if next < end && next - i <= 2 {
            return header_block_len(lines, next, end).map(|n| next - i + n);
        }
        return None;
    }
    if let Some(n) = header_block_len(lines, i, end) {
        return Some(n);
    }
    for span in 1..=3usize {
        if i + span > end || lines[i + span - 1].len() > MAX_HEADER_LINE {
            break;
        }
        if span > 1 && is_blank(lines[i + span - 1]) {
            break;
        }
        // A wrapped attribution starts here only if it does not also match without this
        // line: otherwise this line is the person's text just above a one-line attribution.
        if is_attribution(&join(&lines[i..i + span]))
            && (span == 1
                || ATTRIBUTION_OPENER.is_match(line)
                || !is_attribution(&join(&lines[i + 1..i + span])))
        {
            return Some(span);
        }
    }
    None
}

fn is_header_line(line: &str) -> bool {
    line.len() <= MAX_HEADER_LINE && (HEADER_FROM.is_match(line) || HEADER_OTHER.is_match(line))
}

/// Length of an Outlook-style header block starting at `i`: a From (or Date) line and at least
/// two more header lines (From/Sent/Date/To/Cc/Subject, in several languages), possibly with
/// indented continuation lines, and no blank line inside.
fn header_block_len(lines: &[&str], i: usize, end: usize) -> Option<usize> {
    if i >= end || !(HEADER_FROM.is_match(lines[i]) || HEADER_DATE.is_match(lines[i])) {
        return None;
    }
    let mut k = i + 1;
    let mut headers = 1;
    while k < end && k <= i + 10 {
        if is_header_line(lines[k]) {
            headers += 1;
        } else if is_blank(lines[k]) || !lines[k].starts_with([' ', '\t', '<', '[']) {
            break;
        }
        k += 1;
    }
    (headers >= 3).then_some(k - i)
}

#[cfg(test)]
mod tests;
