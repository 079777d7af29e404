//! Attribution lines ("On … wrote:" in every language and shape) and the reply header right
//! above a quoted block.

use super::headers::*;
use super::lines::*;
use super::patterns::*;
use super::{Rule, shapes};

/// Removes the reply header (attribution or header block) that ends right above line `at`,
/// with the blank lines and rules around it; returns the new end of the kept text.
pub(super) fn strip_header_above(lines: &[&str], removed: &mut [Option<Rule>], at: usize) -> usize {
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
            let rule = if span == 1 {
                Rule::Attribution
            } else {
                Rule::WrappedAttribution
            };
            mark(removed, first, at, rule);
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
    let known = (k..top)
        .find(|j| HEADER_FROM.is_match(lines[*j]))
        .filter(|j| (*j..top).all(|m| is_header_line(lines[m])))
        .map(|j| (j, Rule::HeaderBlock));
    let block = known.or_else(|| {
        (k..top)
            .find(|j| shapes::block_len(lines, *j, top, false) == Some(top - j))
            .map(|j| (j, Rule::HeaderBlockShape))
    });
    if let Some((k, rule)) = block {
        mark(removed, k, at, rule);
        top = k;
    } else if top > 0 && shapes::squashed_block(lines[top - 1]) {
        mark(removed, top - 1, at, Rule::SquashedHeader);
        top -= 1;
    }
    while top > 0
        && (is_blank(lines[top - 1])
            || is_separator(lines[top - 1])
            || ORIGINAL_MESSAGE.is_match(lines[top - 1]))
    {
        top -= 1;
        if !is_blank(lines[top]) {
            removed[top] = Some(if ORIGINAL_MESSAGE.is_match(lines[top]) {
                Rule::OriginalMessage
            } else {
                Rule::RuleAbove
            });
        }
    }
    top
}

/// Whether `text` (a line, or wrapped lines joined) is an attribution here: one of the known
/// forms ending in its colon, or — only directly above quoted lines — one without the colon,
/// one recognised by its shape, or a bare "<name> <verb>:". A line that ends like a sentence
/// and is followed by more of the person's text is never one ("On 20.10.2017 Dr Lee wrote
/// that I should rest" stays).
pub(super) fn attribution_text(text: &str, quoted_below: bool) -> bool {
    if quoted_below {
        return is_attribution(text)
            || shapes::attribution_without_colon(text)
            || shapes::name_and_verb(text);
    }
    let trimmed = text.trim_end();
    // What stands for the colon: a rule around the line ("---- On … wrote ----"), Gmail's
    // numeric date first ("2016-03-03 17:21 GMT+01:00 Some One"), or a name with its address
    // in brackets next to a date, which a client writes and a person does not. Checked only
    // for what the known forms take (most lines are none), the cheap tests first.
    let colon = || {
        trimmed.ends_with([':', '：'])
            || (trimmed.trim_start().starts_with("--") && trimmed.ends_with("--"))
            || NUMERIC_DATE_FIRST.is_match(trimmed)
            || (trimmed.contains('@')
                && BRACKETED_ADDRESS.is_match(trimmed)
                && DATED.is_match(trimmed)
                && !shapes::ends_sentence(trimmed))
    };
    colon() && is_attribution(text)
}

/// Whether lines `i..i + span` are one attribution (see [`attribution_text`] and, over
/// several lines, [`wraps`]).
pub(super) fn attribution_at(lines: &[&str], i: usize, span: usize, end: usize) -> bool {
    let quoted_below = quoted_next(lines, i + span, end);
    if !quoted_below {
        // What stands for the colon (see [`attribution_text`]) can be ruled out line by line,
        // before any text is joined: this runs for every line of a reply.
        let first = lines[i].trim_start();
        let last = lines[i + span - 1].trim_end();
        let span_lines = &lines[i..i + span];
        let maybe = last.ends_with([':', '：'])
            || (first.starts_with("--") && last.ends_with("--"))
            || first.starts_with(char::is_numeric)
            || (span_lines.iter().any(|l| l.contains('@'))
                && span_lines.iter().any(|l| l.chars().any(char::is_numeric)));
        if !maybe {
            return false;
        }
    }
    let text = if span == 1 {
        std::borrow::Cow::Borrowed(lines[i].trim())
    } else {
        std::borrow::Cow::Owned(join(&lines[i..i + span]))
    };
    attribution_text(&text, quoted_below)
        && (span == 1 || wraps(lines[i], &lines[i + 1..i + span], quoted_below))
}

/// [`attribution_at`] for the lines right above quoted history (or a copy of ours).
pub(super) fn attribution_above(span: &[&str]) -> bool {
    attribution_text(&join(span), true) && (span.len() == 1 || wraps(span[0], &span[1..], true))
}

/// Whether `line` is a piece of a wrapped attribution's name and address: brackets or an
/// address, or a few words each capitalised (or in a script without case).
pub(super) fn name_or_address(line: &str) -> bool {
    let t = line.trim();
    if t.contains(['<', '>', '@']) || t.starts_with(['(', '[', '"']) {
        return true;
    }
    let words: Vec<&str> = t.split_whitespace().collect();
    (1..=5).contains(&words.len())
        && !shapes::ends_sentence(t)
        && words.iter().all(|w| shapes::capitalised(w))
}

/// Whether `first` is the first line of an attribution wrapped onto `rest`, not the person's
/// last line above a one-line attribution. When in doubt it is the person's: a line that ends
/// like a sentence never wraps; when `rest` is an attribution on its own, `first` must open
/// like one with a whole date (year and time), and end like a date or be continued mid-phrase ("On Fri, 20 Oct
/// 2017 at 17:50," / "Jane <j@x> wrote:"), or name someone with an address in brackets;
/// otherwise it must carry the address, or break mid-phrase, or open one with a date and go
/// on mid-phrase below.
pub(super) fn wraps(first: &str, rest: &[&str], quoted_below: bool) -> bool {
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

/// Whether a line may be the first of an attribution wrapped over several lines: it starts
/// like one ("On", "Le", "Am", a number…) or carries a date and a time.
pub(super) fn opens_attribution(line: &str) -> bool {
    ATTRIBUTION_OPENER.is_match(line) || DATED_LINE.is_match(line)
}

/// Whether `text` (a line, or wrapped lines joined) is an attribution line, also when wrapped
/// in rules ("---- On … wrote ----").
pub(super) fn is_attribution(text: &str) -> bool {
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
