//! The end of a reply: phone and app sign-offs, signatures, list footers, a closing.

use super::lines::*;
use super::patterns::*;
use super::{Rule, shapes};

/// Step 1c of [`extract`]: returns the new end.
pub(super) fn cut_below_sign_off(
    lines: &[&str],
    removed: &mut [Option<Rule>],
    end: usize,
) -> usize {
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
        // Only a sign-off as clients write it, on a line of its own below typed text: short,
        // no comma (the person's "Envoyé de mon téléphone, désolée" may go on below), and a
        // blank line or a rule after it. The cheap tests first: every line is asked.
        let apart = || k + 1 >= end || is_blank(lines[k + 1]) || is_separator(lines[k + 1]);
        let clean = || {
            let bare = without_link(line);
            !bare.contains(',') && bare.split_whitespace().nth(8).is_none()
        };
        if !typed_above || !apart() || !clean() || !is_sign_off(line) {
            typed_above = true;
            continue;
        }
        let below = skip_blank(lines, k + 1, end);
        if below >= end || FORWARD.is_match(lines[below]) || only_signature(lines, below, end) {
            return end;
        }
        removed[k] = Some(sign_off_rule(line));
        mark(removed, below, end, Rule::BelowSignOff);
        return k;
    }
    end
}

/// Cuts a mailing-list footer ("____", then the list's name and address) and a signature
/// after `-- ` from the end of the kept text, when there is typed text above them; returns
/// the new end.
pub(super) fn cut_footer_and_signature(
    lines: &[&str],
    removed: &mut [Option<Rule>],
    mut end: usize,
) -> usize {
    let typed_above = |removed: &[Option<Rule>], s: usize| {
        (0..s).any(|k| !is_blank(lines[k]) && removed[k].is_none())
    };
    let s = footer_start(lines, 0, end);
    if s < end && removed[s].is_none() && typed_above(removed, s) {
        mark(removed, s, end, Rule::ListFooter);
        end = s;
    }
    if let Some(s) = (0..end)
        .rev()
        .find(|k| removed[*k].is_none() && is_signature_delimiter(lines[*k]))
        && only_signature(lines, s, end)
        && typed_above(removed, s)
    {
        mark(removed, s, end, Rule::Signature);
        end = s;
    }
    end
}

/// Whether lines `from..end` are only a closing: one or two short lines, the first starting
/// with a closing word ("Regards, Roman", "Thanks,\nJane").
pub(super) fn only_closing(lines: &[&str], from: usize, end: usize) -> bool {
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
pub(super) fn footer_start(lines: &[&str], from: usize, end: usize) -> usize {
    let Some(s) = (from..end)
        .rev()
        .take(MAX_FOOTER_SCAN)
        .find(|k| is_separator(lines[*k]) || is_signature_delimiter(lines[*k]))
    else {
        return end;
    };
    let short = is_separator(lines[s]) && short_unquoted_tail(lines, s + 1, end, 6);
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
pub(super) const MAX_FOOTER_SCAN: usize = 24;

/// Whether lines `from..end` look like a signature: a few short unquoted lines.
pub(super) fn only_signature(lines: &[&str], from: usize, end: usize) -> bool {
    let Some(content) = at_most(lines, from, end, 12) else {
        return false;
    };
    !content.is_empty()
        && content
            .iter()
            .all(|l| !is_quoted(l) && l.chars().count() <= 100)
        && (is_signature_delimiter(content[0]) || content.iter().all(|l| is_sign_off(l)))
}

/// `line` without a link glued to its end ("…für Android<https://aka.ms/ghei36>"); the pattern
/// runs only when there is a link to take off.
fn without_link(line: &str) -> std::borrow::Cow<'_, str> {
    if line.contains("://") || line.contains("mailto:") {
        TRAILING_LINK.replace(line, "")
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

/// Which rule recognises the sign-off `line`: the vocabulary's words, or an app's shape.
pub(super) fn sign_off_rule(line: &str) -> Rule {
    let bare = without_link(line);
    if SIGN_OFF.is_match(&bare) || SIGN_OFF_ANY_LANGUAGE.is_match(&bare) {
        Rule::SignOff
    } else {
        Rule::AppSignOff
    }
}

/// Whether a line is a mobile or web-client sign-off (short lines only, a glued link aside).
pub(super) fn is_sign_off(line: &str) -> bool {
    if line.len() > MAX_HEADER_LINE {
        return false;
    }
    // Cheap refusals first, since every line of a reply may be asked: a sign-off is a short
    // line of a few words.
    let bare = without_link(line);
    if bare.chars().count() > 80 || bare.split_whitespace().nth(16).is_some() {
        return false;
    }
    SIGN_OFF.is_match(&bare) || SIGN_OFF_ANY_LANGUAGE.is_match(&bare) || shapes::app_sign_off(&bare)
}
