//! Preparing a body for extraction: long blank runs shortened, an attribution or a header
//! line that shares a line with something else put on its own.

use super::attribution::*;
use super::lines::*;
use super::patterns::*;
use super::shapes;

/// Runs of blank lines longer than this are shortened to it. They carry nothing a reader
/// sees, and each line costs the extraction a few dozen bytes of bookkeeping: a reply of a
/// million line breaks made it use seventy times its size in memory.
pub const MAX_BLANK_RUN: usize = 20;

/// Whether `text` may have a run of more than [`MAX_BLANK_RUN`] blank lines, read line by line:
/// a line counts as blank unless it has a visible ASCII character (a non-ASCII one may be an
/// invisible mark, which [`is_blank`] decides when this says maybe).
fn may_have_long_blank_run(text: &str) -> bool {
    let mut run = 0;
    for line in text.split('\n') {
        // A line with a visible ASCII character is not blank; most lines say so at once.
        let blank = line
            .bytes()
            .all(|b| b.is_ascii_whitespace() || !b.is_ascii());
        run = if blank { run + 1 } else { 0 };
        if run > MAX_BLANK_RUN {
            return true;
        }
    }
    false
}

/// `text` with every run of more than [`MAX_BLANK_RUN`] blank lines shortened to that many.
pub(super) fn shorten_blank_runs(text: &str) -> std::borrow::Cow<'_, str> {
    if !may_have_long_blank_run(text) {
        return std::borrow::Cow::Borrowed(text);
    }
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

/// Puts an attribution that shares a line with the person's text ("reply On Wed, Apr 4, 2012
/// at 3:59 PM, bob@example.com wrote:", "reply--- On …") on a line of its own, when quoted
/// lines follow it.
pub(super) fn split_shared_attributions(body: &str) -> std::borrow::Cow<'_, str> {
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
pub(super) fn split_run_in_rules(body: &str) -> std::borrow::Cow<'_, str> {
    // A rule needs two of its characters in a row somewhere; most bodies are read once here.
    let doubled = ["--", "__", "==", "**", "~~"]
        .iter()
        .any(|r| body.contains(r));
    if !doubled {
        return std::borrow::Cow::Borrowed(body);
    }
    // The copy starts at the first line that needs splitting, if any.
    let mut out: Option<String> = None;
    let mut offset = 0;
    for line in body.split('\n') {
        let at = shapes::run_in_rule(line).filter(|at| shapes::label_line(&line[*at..]).is_some());
        if let Some(out) = out.as_mut() {
            out.push('\n');
            match at {
                Some(at) => {
                    out.push_str(&line[..at]);
                    out.push('\n');
                    out.push_str(&line[at..]);
                }
                None => out.push_str(line),
            }
        } else if let Some(at) = at {
            let mut copy = String::with_capacity(body.len() + 8);
            copy.push_str(&body[..offset + at]);
            copy.push('\n');
            copy.push_str(&line[at..]);
            out = Some(copy);
        }
        offset += line.len() + 1;
    }
    out.map_or(std::borrow::Cow::Borrowed(body), std::borrow::Cow::Owned)
}
