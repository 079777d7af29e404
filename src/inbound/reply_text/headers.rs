//! Where a reply header starts, and how many lines it spans: an "original message" line or a
//! rule with a header block, a header block, one squashed onto a line, an attribution.

use super::attribution::*;
use super::lines::*;
use super::patterns::*;
use super::{Rule, shapes};

/// If a reply header starts at line `i`, how many lines it spans and the rule that found it
/// (a rule or an "original message" line above a header block counts as the block's).
pub(super) fn header_at(lines: &[&str], i: usize, end: usize) -> Option<(usize, Rule)> {
    let line = lines[i].trim();
    if line.is_empty() || line.len() > MAX_HEADER_LINE {
        return None;
    }
    if ORIGINAL_MESSAGE.is_match(line) {
        let next = skip_blank(lines, i + 1, end);
        return Some(match any_block_len(lines, next, end, true) {
            Some((n, rule)) => (next - i + n, rule),
            None => (next - i, Rule::OriginalMessage),
        });
    }
    if is_separator(line) {
        let next = skip_blank(lines, i + 1, end);
        if next < end && next - i <= 2 {
            return any_block_len(lines, next, end, true).map(|(n, rule)| (next - i + n, rule));
        }
        return None;
    }
    if let Some(found) = any_block_len(lines, i, end, false) {
        return Some(found);
    }
    if shapes::squashed_block(lines[i]) {
        return Some((1, Rule::SquashedHeader));
    }
    for span in 1..=3usize {
        if i + span > end || lines[i + span - 1].len() > MAX_HEADER_LINE {
            break;
        }
        if span > 1 && is_blank(lines[i + span - 1]) {
            break;
        }
        if attribution_at(lines, i, span, end) {
            let rule = if span == 1 {
                Rule::Attribution
            } else {
                Rule::WrappedAttribution
            };
            return Some((span, rule));
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
                    return Some((last + 1 - i, Rule::WrappedAttribution));
                }
                break;
            }
        }
    }
    None
}

/// A header block at line `i`: one written with the vocabulary's labels, or one recognised by
/// its shape (`ruled`: a rule or an "original message" line is right above it).
pub(super) fn any_block_len(
    lines: &[&str],
    i: usize,
    end: usize,
    ruled: bool,
) -> Option<(usize, Rule)> {
    if i >= end {
        return None;
    }
    header_block_len(lines, i, end)
        .map(|n| (n, Rule::HeaderBlock))
        .or_else(|| shapes::block_len(lines, i, end, ruled).map(|n| (n, Rule::HeaderBlockShape)))
}

pub(super) fn is_header_line(line: &str) -> bool {
    line.len() <= MAX_HEADER_LINE && (HEADER_FROM.is_match(line) || HEADER_OTHER.is_match(line))
}

/// Length of an Outlook-style header block starting at `i`: a From (or Date) line and at least
/// two more header lines (From/Sent/Date/To/Cc/Subject, in several languages), possibly with
/// indented continuation lines, and no blank line inside.
pub(super) fn header_block_len(lines: &[&str], i: usize, end: usize) -> Option<usize> {
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
pub(super) fn is_mail_like(line: &str) -> bool {
    (HEADER_DATE.is_match(line) && line.chars().any(|c| c.is_numeric())) || line.contains('@')
}

pub(super) fn is_timestamp_line(line: &str) -> bool {
    HEADER_DATE.is_match(line) && TIME_OF_DAY.is_match(line)
}
