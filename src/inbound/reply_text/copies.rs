//! Copies of messages Sealpost sent, found by their words wherever they appear.

use super::attribution::*;
use super::endings::*;
use super::lines::*;
use super::patterns::*;
use super::{Known, Rule};

/// Cuts copies of sent messages: with text typed above the first copy and nothing but copies,
/// quotes, template lines (links, rules, short lines) below, everything from the copy down is
/// history (a top-posted reply); with nothing typed above, only the copy and the header above
/// it go (a bottom-posted one). Answers typed between copies make an inline reply: kept.
pub(super) fn cut_sent_copy(
    lines: &[&str],
    removed: &mut [Option<Rule>],
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
            && !is_signature_delimiter(l)
            && !is_separator(l)
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
        mark(removed, first, end, Rule::SentCopy);
        return copy_header_above(lines, removed, first);
    }
    if !typed_above {
        copy_header_above(lines, removed, first);
        mark(removed, first, last_end, Rule::SentCopy);
    }
    end
}

/// The reply headers above a copy of a sent message: known ones, or else — since what
/// follows is certainly our message — short lines ending in a colon right above it, in
/// whatever language: the notification's own "Dr Lee wrote:" and the client's attribution
/// above that ("2026. nov. 22., vas 10:00 időpontban Lee Family Practice ezt írta:").
pub(super) fn copy_header_above(lines: &[&str], removed: &mut [Option<Rule>], at: usize) -> usize {
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
        mark(removed, k, top, Rule::SentCopyHeader);
        top = skip_blank_up(lines, k);
    }
    top
}
