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
pub mod known;
pub mod patterns;
mod shapes;
pub mod vocabulary;

use std::fmt;

use mail_parser::{MimeHeaders, PartType};

use crate::domain::mail::REPLY_MARKER;
pub use known::Known;
use patterns::*;

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
    /// (1-based line number in the body, reason, the line).
    pub removed: Vec<(usize, Reason, String)>,
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

/// Joins the soft line breaks of RFC 3676 format=flowed text.
///
/// Trailing line breaks are set aside and put back as they were, in a loop: a reply may end in
/// tens of thousands of them, and handling them one call deeper each overflowed the stack.
fn unflow(text: &str, delsp: bool) -> String {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let mut out = unflow_lines(body, delsp);
    out.extend(std::iter::repeat_n('\n', trailing));
    out
}

/// [`unflow`] for a text that does not end in a line break.
fn unflow_lines(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut joining = false;
    let mut joining_depth = 0;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let mut content = &line[depth..];
        if joining && depth != joining_depth {
            // RFC 3676 4.5: a flowed line never joins one of another quote depth ("> Hi " then
            // the person's "Hello" stay two lines).
            out.push('\n');
            joining = false;
        }
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
        joining_depth = depth;
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
    from_body_knowing(body, &Known::default())
}

/// Only the reply text of a decoded body (what the pipeline files), without the list of
/// removed lines, which costs a copy of every quoted line.
pub fn text_of(body: &str, known: &Known) -> String {
    extract(body, known, false).text
}

/// Extracts the reply from a decoded text body, also recognising copies of `known` (the
/// messages Sealpost sent this person) wherever they appear.
pub fn from_body_knowing(body: &str, known: &Known) -> Extraction {
    extract(body, known, true)
}

/// The extraction; with `explain`, also every removed line with its reason.
fn extract(body: &str, known: &Known, explain: bool) -> Extraction {
    let body = if body.contains('\r') {
        std::borrow::Cow::Owned(body.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(body)
    };
    let body = shorten_blank_runs(&body);
    let body = split_shared_attributions(&body);
    let body = split_run_in_rules(&body);
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

    // 1b. A copy of what Sealpost sent, found by its words (the marker deleted, a client that
    // mangles it, history without quote marks under an attribution in any language).
    if !known.is_empty() && !removed.contains(&Some(Reason::Marker)) {
        end = cut_sent_copy(&lines, &mut removed, end, known);
    }

    // 1c. A phone's or an app's sign-off with typed text above it and more below: the client
    // put it at the end of what the person wrote, so what follows is the old message, even
    // without a header ("Get Outlook for Android" and then the message replied to). A forward
    // below it is the person's, and stays.
    end = cut_below_sign_off(&lines, &mut removed, end);

    // 2. History blocks. Where a list footer starts is looked up once, not per header.
    let footer = footer_start(&lines, 0, end);
    let footer_after = |from: usize| if footer >= from { footer } else { end };
    // Whether anything typed lies above line i, found by a scan that only moves forward (lines
    // above i are not marked again here), not by re-reading the top for every header.
    let (mut scanned, mut typed_before) = (0, false);
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
            let answered_below = (quote_end..footer_after(quote_end)).any(|j| {
                !is_blank(lines[j])
                    && !is_quoted(lines[j])
                    && !is_sign_off(lines[j])
                    && !SIGNATURE_DELIMITER.is_match(lines[j])
            });
            if answered_below && !only_signature(&lines, quote_end, end) {
                while !typed_before && scanned < i {
                    typed_before = !is_blank(lines[scanned]) && removed[scanned].is_none();
                    scanned += 1;
                }
                let typed_above = typed_before;
                let more_quotes = (quote_end..end).any(|j| is_quoted(lines[j]));
                if !typed_above && !more_quotes {
                    // Bottom-posted: one quoted block on top, the answer below it. Dropping the
                    // header and the quote loses none of the person's words.
                    mark(&mut removed, i, i + span, Reason::ReplyHeader);
                    mark(&mut removed, i + span, quote_end, Reason::History);
                    i = quote_end;
                    continue;
                }
                let tail_end = footer_after(quote_end);
                if !more_quotes && only_closing(&lines, quote_end, tail_end) {
                    // A top-posted reply wrapped around the quote: only a closing ("Regards,
                    // Roman") below it. The quote goes; the closing stays with the reply.
                    let closing = skip_blank(&lines, quote_end, tail_end);
                    mark(&mut removed, i, i + span, Reason::ReplyHeader);
                    mark(&mut removed, i + span, closing, Reason::History);
                    i = closing;
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

    // 3. A list footer and a signature at the end, then a trailing quoted block and its
    // attribution (which may have been above them), then once more what that uncovered.
    end = cut_footer_and_signature(&lines, &mut removed, end);
    let mut j = end;
    while j > 0 && (is_blank(lines[j - 1]) || is_quoted(lines[j - 1])) && removed[j - 1].is_none() {
        j -= 1;
    }
    let forwarded = (j..end)
        .find(|k| !is_blank(lines[*k]))
        .is_some_and(|k| FORWARD.is_match(lines[k]));
    if (j..end).any(|k| is_quoted(lines[k]))
        && (0..j).any(|k| !is_blank(lines[k]) && removed[k].is_none())
        && !forwarded
    {
        mark(&mut removed, j, end, Reason::History);
        end = strip_header_above(&lines, &mut removed, j);
        end = cut_footer_and_signature(&lines, &mut removed, end);
    }

    // 4. Sign-offs at the end.
    let last_content = |removed: &[Option<Reason>], end: usize| {
        (0..end)
            .rev()
            .find(|k| removed[*k].is_none() && !is_blank(lines[*k]))
    };
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
    // Nothing but quoted lines: the person typed nothing (a client re-sending the history).
    if kept.iter().all(|l| is_blank(l) || is_quoted(l)) {
        for k in 0..lines.len() {
            if removed[k].is_none() && !is_blank(lines[k]) {
                removed[k] = Some(Reason::History);
            }
        }
        kept.clear();
    }
    let text = kept.join("\n").trim_matches('\n').trim_end().to_owned();
    let removed = removed
        .iter()
        .enumerate()
        .filter(|_| explain)
        .filter_map(|(k, r)| r.map(|r| (k + 1, r, lines[k].to_owned())))
        .collect();
    Extraction { text, removed }
}

/// Runs of blank lines longer than this are shortened to it. They carry nothing a reader
/// sees, and each line costs the extraction a few dozen bytes of bookkeeping: a reply of a
/// million line breaks made it use seventy times its size in memory.
pub const MAX_BLANK_RUN: usize = 20;

/// `text` with every run of more than [`MAX_BLANK_RUN`] blank lines shortened to that many.
fn shorten_blank_runs(text: &str) -> std::borrow::Cow<'_, str> {
    let mut run = 0;
    let mut long = false;
    for line in text.split('\n') {
        run = if is_blank(line) { run + 1 } else { 0 };
        long |= run > MAX_BLANK_RUN;
    }
    if !long {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(1 << 20));
    let mut run = 0;
    for (k, line) in text.split('\n').enumerate() {
        run = if is_blank(line) { run + 1 } else { 0 };
        if run > MAX_BLANK_RUN {
            continue;
        }
        if k > 0 {
            out.push('\n');
        }
        out.push_str(line);
    }
    std::borrow::Cow::Owned(out)
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
    let fragment =
        |k: usize| LINK_FRAGMENT.is_match(lines[k]) && k + 1 < end && is_quoted(lines[k + 1]);
    while i < end && (is_quoted(lines[i]) || is_blank(lines[i]) || fragment(i)) {
        if is_quoted(lines[i]) {
            last = i;
        }
        i += 1;
    }
    last + 1
}

/// Step 1c of [`extract`]: returns the new end.
fn cut_below_sign_off(lines: &[&str], removed: &mut [Option<Reason>], end: usize) -> usize {
    let mut typed_above = false;
    for k in 0..end {
        let line = lines[k];
        if removed[k].is_some() || is_blank(line) {
            continue;
        }
        if is_quoted(line) {
            // Quotes above the sign-off: the reply is bottom- or inline-posted, and what
            // follows the sign-off is not the client's copy of the old message.
            return end;
        }
        if !is_sign_off(line) {
            typed_above = true;
            continue;
        }
        // Only a sign-off as clients write it, on a line of its own: short, no comma (the
        // person's "Envoyé de mon téléphone, désolée" may go on below), and a blank line or a
        // rule after it.
        let bare = TRAILING_LINK.replace(line, "");
        let clean = !bare.contains(',') && bare.split_whitespace().count() <= 8;
        let apart = k + 1 >= end || is_blank(lines[k + 1]) || SEPARATOR.is_match(lines[k + 1]);
        if !typed_above || !clean || !apart {
            typed_above = true;
            continue;
        }
        let below = skip_blank(lines, k + 1, end);
        if below >= end || FORWARD.is_match(lines[below]) || only_signature(lines, below, end) {
            return end;
        }
        removed[k] = Some(Reason::SignOff);
        mark(removed, below, end, Reason::History);
        return k;
    }
    end
}

/// Cuts copies of sent messages: with text typed above the first copy and nothing but copies,
/// quotes, template lines (links, rules, short lines) below, everything from the copy down is
/// history (a top-posted reply); with nothing typed above, only the copy and the header above
/// it go (a bottom-posted one). Answers typed between copies make an inline reply: kept.
fn cut_sent_copy(
    lines: &[&str],
    removed: &mut [Option<Reason>],
    end: usize,
    known: &Known,
) -> usize {
    let runs = known.runs(lines, 0, end);
    let Some(&(first, first_end)) = runs.first() else {
        return end;
    };
    let last_end = runs.last().map_or(first_end, |r| r.1);
    // A table, not a search of the runs per line: a crafted reply may hold thousands of runs.
    let mut copied = vec![false; end];
    for (a, b) in &runs {
        copied[*a..*b].fill(true);
    }
    let in_run = |k: usize| copied[k];
    let typed = |k: usize| {
        let l = lines[k];
        !is_blank(l)
            && removed[k].is_none()
            && !in_run(k)
            && !is_quoted(l)
            && !SIGNATURE_DELIMITER.is_match(l)
            && !SEPARATOR.is_match(l)
            && !l.contains("://")
            && !l.trim_end().ends_with(':')
            && !is_sign_off(l)
            && l.split_whitespace().count() > 4
    };
    let header_top = copy_header_above(lines, &mut removed.to_vec(), first);
    let typed_above = (0..header_top).any(|k| !is_blank(lines[k]) && removed[k].is_none());
    let typed_between = (first_end..last_end).any(typed);
    let typed_below = (last_end..end).any(typed);
    if typed_between {
        return end;
    }
    if typed_above && !typed_below {
        mark(removed, first, end, Reason::SentCopy);
        return copy_header_above(lines, removed, first);
    }
    if !typed_above {
        copy_header_above(lines, removed, first);
        mark(removed, first, last_end, Reason::SentCopy);
    }
    end
}

/// The reply headers above a copy of a sent message: known ones, or else — since what
/// follows is certainly our message — short lines ending in a colon right above it, in
/// whatever language: the notification's own "Dr Lee wrote:" and the client's attribution
/// above that ("2026. nov. 22., vas 10:00 időpontban Lee Family Practice ezt írta:").
fn copy_header_above(lines: &[&str], removed: &mut [Option<Reason>], at: usize) -> usize {
    let mut top = at;
    for _ in 0..2 {
        let known = strip_header_above(lines, removed, top);
        if (known..top).any(|k| removed[k].is_some()) {
            top = known;
            continue;
        }
        let k = known.checked_sub(1).filter(|k| {
            let l = lines[*k].trim_end();
            removed[*k].is_none()
                && l.ends_with([':', '：'])
                && l.split_whitespace().count() <= 15
                && l.len() <= MAX_HEADER_LINE
        });
        let Some(k) = k else {
            return known;
        };
        mark(removed, k, top, Reason::ReplyHeader);
        top = skip_blank_up(lines, k);
    }
    top
}

fn skip_blank_up(lines: &[&str], mut k: usize) -> usize {
    while k > 0 && is_blank(lines[k - 1]) {
        k -= 1;
    }
    k
}

/// Cuts a mailing-list footer ("____", then the list's name and address) and a signature
/// after `-- ` from the end of the kept text, when there is typed text above them; returns
/// the new end.
fn cut_footer_and_signature(
    lines: &[&str],
    removed: &mut [Option<Reason>],
    mut end: usize,
) -> usize {
    let typed_above = |removed: &[Option<Reason>], s: usize| {
        (0..s).any(|k| !is_blank(lines[k]) && removed[k].is_none())
    };
    let s = footer_start(lines, 0, end);
    if s < end && removed[s].is_none() && typed_above(removed, s) {
        mark(removed, s, end, Reason::Signature);
        end = s;
    }
    if let Some(s) = (0..end)
        .rev()
        .find(|k| removed[*k].is_none() && SIGNATURE_DELIMITER.is_match(lines[*k]))
        && only_signature(lines, s, end)
        && typed_above(removed, s)
    {
        mark(removed, s, end, Reason::Signature);
        end = s;
    }
    end
}

/// Whether lines `from..end` are only a closing: one or two short lines, the first starting
/// with a closing word ("Regards, Roman", "Thanks,\nJane").
fn only_closing(lines: &[&str], from: usize, end: usize) -> bool {
    let Some(content) = at_most(lines, from, end, 2) else {
        return false;
    };
    !content.is_empty()
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 40)
        && CLOSING.is_match(content[0])
}

/// Where a mailing-list footer starts among lines `from..end`; `end` when there is none. A
/// footer is what follows the last rule ("____") or signature delimiter: a few short lines
/// (the list's name, address and link), or a few lines of any length that say what a list
/// says ("To unsubscribe …", "You received this message because …").
fn footer_start(lines: &[&str], from: usize, end: usize) -> usize {
    let Some(s) = (from..end)
        .rev()
        .take(MAX_FOOTER_SCAN)
        .find(|k| SEPARATOR.is_match(lines[*k]) || SIGNATURE_DELIMITER.is_match(lines[*k]))
    else {
        return end;
    };
    let short = SEPARATOR.is_match(lines[s]) && short_unquoted_tail(lines, s + 1, end, 6);
    let listy = || {
        at_most(lines, s + 1, end, 8).is_some_and(|tail| {
            !tail.is_empty()
                && tail
                    .iter()
                    .all(|l| !is_quoted(l) && l.len() <= MAX_HEADER_LINE)
                && tail.iter().any(|l| LIST_FOOTER.is_match(l))
        })
    };
    if short || listy() { s } else { end }
}

/// How far up from the end a list footer's rule is looked for.
const MAX_FOOTER_SCAN: usize = 24;

/// Puts an attribution that shares a line with the person's text ("reply On Wed, Apr 4, 2012
/// at 3:59 PM, bob@example.com wrote:", "reply--- On …") on a line of its own, when quoted
/// lines follow it.
fn split_shared_attributions(body: &str) -> std::borrow::Cow<'_, str> {
    // Usually there is nothing to split: no copy then.
    if !INNER_ATTRIBUTION.is_match(body) {
        return std::borrow::Cow::Borrowed(body);
    }
    let lines: Vec<&str> = body.split('\n').collect();
    let mut out = String::with_capacity(body.len() + 8);
    // Whether the next non-blank line after each line is quoted, computed backwards once.
    let mut next_quoted = vec![false; lines.len()];
    let mut below = false;
    for (k, line) in lines.iter().enumerate().rev() {
        next_quoted[k] = below;
        if !is_blank(line) {
            below = is_quoted(line);
        }
    }
    for (k, line) in lines.iter().enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let split = (next_quoted[k] && !is_quoted(line) && line.len() <= MAX_HEADER_LINE)
            .then(|| {
                INNER_ATTRIBUTION
                    .find_iter(line)
                    // Past the space or dash the match starts with, which may be a
                    // multi-byte space (a no-break space before "On").
                    .map(|m| m.start() + line[m.start()..].chars().next().map_or(1, char::len_utf8))
                    .find(|at| is_attribution(line[*at..].trim_end()))
            })
            .flatten()
            .map(|at| (line[..at].trim_end_matches(['-', ' ', '\t']), &line[at..]))
            .filter(|(typed, _)| !typed.trim().is_empty());
        match split {
            Some((typed, attribution)) => {
                out.push_str(typed);
                out.push('\n');
                out.push_str(attribution);
            }
            None => out.push_str(line),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Puts a header line that a client ran into the rule above it
/// ("________________________________From: Dr Lee <…>") on a line of its own, below the rule.
fn split_run_in_rules(body: &str) -> std::borrow::Cow<'_, str> {
    let run_in = |line: &str| {
        shapes::run_in_rule(line).filter(|at| shapes::label_line(&line[*at..]).is_some())
    };
    if !body.split('\n').any(|l| run_in(l).is_some()) {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = String::with_capacity(body.len() + 8);
    for (k, line) in body.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        match run_in(line) {
            Some(at) => {
                out.push_str(&line[..at]);
                out.push('\n');
                out.push_str(&line[at..]);
            }
            None => out.push_str(line),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether lines `from..end` are at most `max` short, unquoted, non-blank lines (and some).
fn short_unquoted_tail(lines: &[&str], from: usize, end: usize, max: usize) -> bool {
    let Some(content) = at_most(lines, from, end, max) else {
        return false;
    };
    !content.is_empty()
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 100)
}

/// The non-blank lines among `from..end`, or `None` as soon as there are more than `max`: these
/// checks run once per reply header, and must not read the rest of a long message each time.
fn at_most<'a>(lines: &[&'a str], from: usize, end: usize, max: usize) -> Option<Vec<&'a str>> {
    let mut content = Vec::new();
    for line in &lines[from..end] {
        if !is_blank(line) {
            if content.len() == max {
                return None;
            }
            content.push(*line);
        }
    }
    Some(content)
}

/// Whether lines `from..end` look like a signature: a few short unquoted lines.
fn only_signature(lines: &[&str], from: usize, end: usize) -> bool {
    let Some(content) = at_most(lines, from, end, 12) else {
        return false;
    };
    !content.is_empty()
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
        if attribution_above(&lines[first..top]) {
            mark(removed, first, at, Reason::ReplyHeader);
            top = first;
            break;
        }
    }
    // A header block right above (From/Sent/To/Subject lines, or label lines by shape), or
    // one squashed onto a line.
    let mut k = top;
    while k > 0
        && top - k < 12
        && (is_header_line(lines[k - 1]) || shapes::label_line(lines[k - 1]).is_some())
    {
        k -= 1;
    }
    let known = (k..top).find(|j| HEADER_FROM.is_match(lines[*j]));
    let block_top = known
        .filter(|j| (*j..top).all(|m| is_header_line(lines[m])))
        .or_else(|| (k..top).find(|j| shapes::block_len(lines, *j, top, true) == Some(top - j)));
    if let Some(k) = block_top {
        mark(removed, k, at, Reason::ReplyHeader);
        top = k;
    } else if top > 0 && shapes::squashed_block(lines[top - 1]) {
        mark(removed, top - 1, at, Reason::ReplyHeader);
        top -= 1;
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

/// A header block at line `i`: one written with the vocabulary's labels, or one recognised by
/// its shape (`ruled`: a rule or an "original message" line is right above it).
fn any_block_len(lines: &[&str], i: usize, end: usize, ruled: bool) -> Option<usize> {
    if i >= end {
        return None;
    }
    header_block_len(lines, i, end).or_else(|| shapes::block_len(lines, i, end, ruled))
}

/// Whether the next non-blank line from `k` on is quoted.
fn quoted_next(lines: &[&str], k: usize, end: usize) -> bool {
    let next = skip_blank(lines, k, end);
    next < end && is_quoted(lines[next])
}

/// Whether `text` (a line, or wrapped lines joined) is an attribution here: one of the known
/// forms ending in its colon, or — only directly above quoted lines — one without the colon,
/// one recognised by its shape, or a bare "<name> <verb>:". A line that ends like a sentence
/// and is followed by more of the person's text is never one ("On 20.10.2017 Dr Lee wrote
/// that I should rest" stays).
fn attribution_text(text: &str, quoted_below: bool) -> bool {
    let trimmed = text.trim_end();
    // What stands for the colon: a rule around the line ("---- On … wrote ----"), Gmail's
    // numeric date first ("2016-03-03 17:21 GMT+01:00 Some One"), or a name with its address
    // in brackets next to a date, which a client writes and a person does not.
    let colon = trimmed.ends_with([':', '：'])
        || (trimmed.trim_start().starts_with("--") && trimmed.ends_with("--"))
        || NUMERIC_DATE_FIRST.is_match(trimmed)
        || (BRACKETED_ADDRESS.is_match(trimmed)
            && DATED.is_match(trimmed)
            && !shapes::ends_sentence(trimmed));
    (is_attribution(text) && (colon || quoted_below))
        || (quoted_below
            && (shapes::attribution_without_colon(text) || shapes::name_and_verb(text)))
}

/// Whether lines `i..i + span` are one attribution (see [`attribution_text`] and, over
/// several lines, [`wraps`]).
fn attribution_at(lines: &[&str], i: usize, span: usize, end: usize) -> bool {
    let quoted_below = quoted_next(lines, i + span, end);
    attribution_text(&join(&lines[i..i + span]), quoted_below)
        && (span == 1 || wraps(lines[i], &lines[i + 1..i + span], quoted_below))
}

/// [`attribution_at`] for the lines right above quoted history (or a copy of ours).
fn attribution_above(span: &[&str]) -> bool {
    attribution_text(&join(span), true) && (span.len() == 1 || wraps(span[0], &span[1..], true))
}

/// Whether `line` is a piece of a wrapped attribution's name and address: brackets or an
/// address, or a few words each capitalised (or in a script without case).
fn name_or_address(line: &str) -> bool {
    let t = line.trim();
    if t.contains(['<', '>', '@']) || t.starts_with(['(', '[', '"']) {
        return true;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    (1..=5).contains(&words.len())
        && !shapes::ends_sentence(t)
        && words.iter().all(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_uppercase() || (c.is_alphabetic() && !c.is_lowercase()))
        })
}

/// Whether `first` is the first line of an attribution wrapped onto `rest`, not the person's
/// last line above a one-line attribution. When in doubt it is the person's: a line that ends
/// like a sentence never wraps; when `rest` is an attribution on its own, `first` must open
/// like one with a whole date (year and time), and end like a date or be continued mid-phrase ("On Fri, 20 Oct
/// 2017 at 17:50," / "Jane <j@x> wrote:"), or name someone with an address in brackets;
/// otherwise it must carry the address, or break mid-phrase, or open one with a date and go
/// on mid-phrase below.
fn wraps(first: &str, rest: &[&str], quoted_below: bool) -> bool {
    let f = shapes::unmarked(first);
    let f = f.trim();
    // A `Label: value` line is the person's ("Email: jane@example.net"); so is a line that
    // ends a sentence. Lines between the first and the verb's are pieces of a name and an
    // address ("A very long name", "<jane@example.com>"), nothing else.
    let inner = &rest[..rest.len().saturating_sub(1)];
    if shapes::ends_sentence(f)
        || shapes::label_line(f).is_some()
        || inner.iter().any(|l| !name_or_address(l))
    {
        return false;
    }
    let rest_text = join(rest);
    let dated = DATED.is_match(f);
    let addressed = HAS_ADDRESS.is_match(f);
    if attribution_text(&rest_text, quoted_below) {
        if ATTRIBUTION_OPENER.is_match(rest[0]) && DATED_LINE.is_match(rest[0]) {
            // The attribution starts, whole date and all, on the next line ("On Fri, 20 Oct
            // 2017 at 17:50, … wrote:"): this one is the person's, however dated.
            return false;
        }
        // Broken mid-phrase: inside a name's brackets or quotes, or before an address.
        let next = rest[0].trim_start();
        let continued = f.ends_with(['<', '"', '(', '[', '“'])
            || next.starts_with(['<', '(', '[', '"'])
            || next.starts_with("mailto:")
            || next
                .split_whitespace()
                .next()
                .is_some_and(|w| w.contains('@'));
        // A name with its address in brackets is a client's, never the person's last line;
        // a date above an attribution that has its own is the person's.
        if BRACKETED_ADDRESS.is_match(f) {
            return true;
        }
        if DATED.is_match(&rest_text) && !continued {
            return false;
        }
        // Opening words and a whole date (a year and a time), as every client writes one.
        return ATTRIBUTION_OPENER.is_match(f)
            && DATED_LINE.is_match(f)
            && (shapes::ends_like_date(f) || continued);
    }
    // The attribution needs this line: it must carry the address, or be broken mid-phrase
    // (after a comma or inside brackets), or open one with a date and go on with a bracket,
    // an address or the verb on the next line.
    let next = rest[0].trim_start();
    let mid_phrase = next.starts_with(['<', '(', '[', '"'])
        || next
            .split_whitespace()
            .next()
            .is_some_and(|w| w.contains('@'))
        || VERB.find(next).is_some_and(|m| m.start() == 0);
    addressed
        || f.ends_with([',', '<', '"', '(', '['])
        || (opens_attribution(f) && dated && mid_phrase)
}

/// Whether a line is a mobile or web-client sign-off (short lines only, a glued link aside).
fn is_sign_off(line: &str) -> bool {
    if line.len() > MAX_HEADER_LINE {
        return false;
    }
    let bare = TRAILING_LINK.replace(line, "");
    bare.chars().count() <= 80
        && (SIGN_OFF.is_match(&bare)
            || SIGN_OFF_ANY_LANGUAGE.is_match(&bare)
            || shapes::app_sign_off(&bare))
}

/// Whether a line may be the first of an attribution wrapped over several lines: it starts
/// like one ("On", "Le", "Am", a number…) or carries a date and a time.
fn opens_attribution(line: &str) -> bool {
    ATTRIBUTION_OPENER.is_match(line) || DATED_LINE.is_match(line)
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
        || ATTRIBUTION_BY_VERB.is_match(bare)
}

/// If a reply header starts at line `i`, how many lines it spans.
fn header_at(lines: &[&str], i: usize, end: usize) -> Option<usize> {
    let line = lines[i].trim();
    if line.is_empty() || line.len() > MAX_HEADER_LINE {
        return None;
    }
    if ORIGINAL_MESSAGE.is_match(line) {
        let next = skip_blank(lines, i + 1, end);
        return Some(next - i + any_block_len(lines, next, end, true).unwrap_or(0));
    }
    if SEPARATOR.is_match(line) {
        let next = skip_blank(lines, i + 1, end);
        if next < end && next - i <= 2 {
            return any_block_len(lines, next, end, true).map(|n| next - i + n);
        }
        return None;
    }
    if let Some(n) = any_block_len(lines, i, end, false) {
        return Some(n);
    }
    if shapes::squashed_block(lines[i]) {
        return Some(1);
    }
    for span in 1..=3usize {
        if i + span > end || lines[i + span - 1].len() > MAX_HEADER_LINE {
            break;
        }
        if span > 1 && is_blank(lines[i + span - 1]) {
            break;
        }
        if attribution_at(lines, i, span, end) {
            return Some(span);
        }
    }
    // An attribution split by blank lines (Polymail: "On Tue, … John Smith", "", "<",
    // "mailto:…>", "> wrote:"): starts like one, ends in a colon within six lines.
    if ATTRIBUTION_OPENER.is_match(line) && line.len() <= 100 {
        for last in i + 1..end.min(i + 6) {
            let l = lines[last].trim();
            if l.len() > 100 {
                break;
            }
            if l.ends_with(':') {
                let parts: Vec<&str> = lines[i..=last]
                    .iter()
                    .copied()
                    .filter(|l| !is_blank(l))
                    .collect();
                if parts.len() > 2
                    && is_attribution(&join(&parts))
                    && wraps(parts[0], &parts[1..], quoted_next(lines, last + 1, end))
                {
                    return Some(last + 1 - i);
                }
                break;
            }
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
    let mut timestamped = is_timestamp_line(lines[i]);
    let mut mail_like = is_mail_like(lines[i]);
    while k < end && k <= i + 10 {
        if is_header_line(lines[k]) {
            headers += 1;
            timestamped |= is_timestamp_line(lines[k]);
            mail_like |= is_mail_like(lines[k]);
        } else if is_blank(lines[k]) || !lines[k].starts_with([' ', '\t', '<', '[']) {
            break;
        }
        k += 1;
    }
    // Two lines are enough when one is a Date/Sent line with a time of day, as mail headers
    // carry ("From: …" + "Date: Wed, 16 May 2012 00:15:02 -0600"); a person's "From: 3 May /
    // To: 10 May" has none. Three or more need something only a client writes: a dated
    // Date/Sent line or an address — a person's "De : ma part… / À : mardi… / Objet : …"
    // has neither.
    (headers >= 3 && mail_like || (headers == 2 && timestamped)).then_some(k - i)
}

/// A header line as only a mail client writes it: a Date/Sent line with a date in it, or a
/// line with an address.
fn is_mail_like(line: &str) -> bool {
    (HEADER_DATE.is_match(line) && line.chars().any(|c| c.is_numeric())) || line.contains('@')
}

fn is_timestamp_line(line: &str) -> bool {
    HEADER_DATE.is_match(line) && TIME_OF_DAY.is_match(line)
}

#[cfg(test)]
mod no_loss;
#[cfg(test)]
mod tests;
