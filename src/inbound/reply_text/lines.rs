//! Reading lines: blank, quoted, runs of them, and marking removed ones.

use super::Rule;
use super::patterns::*;

pub(super) fn is_quoted(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

/// Blank, or only invisible characters (zero-width spaces, Gmail's U+1427 tracking mark).
pub(super) fn is_blank(line: &str) -> bool {
    line.chars().all(|c| {
        c.is_whitespace()
            || matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{1427}'
            )
    })
}

/// A line without its quote marks.
pub(super) fn dequote(line: &str) -> &str {
    line.trim_start_matches(|c: char| c == '>' || c.is_whitespace())
}

/// Marks lines `from..to` removed by `rule`, unless an earlier rule already took them.
pub(super) fn mark(removed: &mut [Option<Rule>], from: usize, to: usize, rule: Rule) {
    for r in removed.iter_mut().take(to).skip(from) {
        r.get_or_insert(rule);
    }
}

pub(super) fn skip_blank(lines: &[&str], mut i: usize, end: usize) -> usize {
    while i < end && is_blank(lines[i]) {
        i += 1;
    }
    i
}

pub(super) fn skip_blank_up(lines: &[&str], mut k: usize) -> usize {
    while k > 0 && is_blank(lines[k - 1]) {
        k -= 1;
    }
    k
}

/// End (exclusive) of the quoted run starting at `i`, blank lines inside included.
pub(super) fn quoted_run_end(lines: &[&str], mut i: usize, end: usize) -> usize {
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

/// The non-blank lines among `from..end`, or `None` as soon as there are more than `max`: these
/// checks run once per reply header, and must not read the rest of a long message each time.
pub(super) fn at_most<'a>(
    lines: &[&'a str],
    from: usize,
    end: usize,
    max: usize,
) -> Option<Vec<&'a str>> {
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

/// Whether lines `from..end` are at most `max` short, unquoted, non-blank lines (and some).
pub(super) fn short_unquoted_tail(lines: &[&str], from: usize, end: usize, max: usize) -> bool {
    let Some(content) = at_most(lines, from, end, max) else {
        return false;
    };
    !content.is_empty()
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 100)
}

pub(super) fn join(lines: &[&str]) -> String {
    lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ")
}

/// Whether the next non-blank line from `k` on is quoted.
pub(super) fn quoted_next(lines: &[&str], k: usize, end: usize) -> bool {
    let next = skip_blank(lines, k, end);
    next < end && is_quoted(lines[next])
}
