//! The extraction itself, step by step (see the module's documentation for the order). Each
//! step marks the lines it removes with its [`Rule`] and may move the end of the kept text up.

use super::attribution::*;
use super::copies::*;
use super::endings::*;
use super::headers::*;
use super::lines::*;
use super::patterns::*;
use super::prepare::lines;
use super::{Extraction, Known, Removed, Rule};
use crate::domain::mail::REPLY_MARKER;

/// The extraction; with `explain`, also every removed line with its reason and rule.
pub(super) fn extract(body: &str, known: &Known, explain: bool) -> Extraction {
    let lines = lines(body);
    let mut cuts = Cuts {
        removed: vec![None; lines.len()],
        end: lines.len(),
        lines: &lines,
    };
    // One search of the whole body first: most replies no longer carry the marker.
    if body.contains(REPLY_MARKER) {
        cuts.marker();
    }
    if !known.is_empty() && !cuts.removed.contains(&Some(Rule::Marker)) {
        cuts.end = cut_sent_copy(&lines, &mut cuts.removed, cuts.end, known);
    }
    cuts.end = cut_below_sign_off(&lines, &mut cuts.removed, cuts.end);
    cuts.history_blocks();
    cuts.trailing_quote();
    cuts.sign_offs_at_the_end();
    cuts.finish(explain)
}

/// The lines, the rule that removed each (if any), and where the kept text ends.
struct Cuts<'a> {
    lines: &'a [&'a str],
    removed: Vec<Option<Rule>>,
    end: usize,
}

impl Cuts<'_> {
    /// Step 1: Sealpost's marker. Everything from its quoted copy down is history, and so is
    /// the client's attribution just above it — unless the person wrote below it.
    fn marker(&mut self) {
        let lines = self.lines;
        let Some(m) = lines.iter().position(|l| dequote(l).contains(REPLY_MARKER)) else {
            return;
        };
        mark(&mut self.removed, m, lines.len(), Rule::Marker);
        let top = strip_header_above(lines, &mut self.removed, m);
        let typed_above = (0..top).any(|i| !is_blank(lines[i]));
        if typed_above {
            self.end = top;
        } else if let Some(last_quoted) = (m..lines.len()).rev().find(|i| is_quoted(lines[*i])) {
            // Bottom-posted: the person wrote below the quoted notification.
            for r in self.removed.iter_mut().skip(last_quoted + 1) {
                *r = None;
            }
        }
    }

    /// Step 2: history blocks under a reply header — cut with everything below when the old
    /// message follows, kept when the person answered between quoted lines (an inline reply).
    /// A forward the person chose to send is kept whole.
    fn history_blocks(&mut self) {
        let lines = self.lines;
        // Where a list footer starts is looked up once, not per header.
        let footer = footer_start(lines, 0, self.end);
        // Whether anything typed lies above line i, found by a scan that only moves forward
        // (lines above i are not marked again here), not by re-reading the top per header.
        let mut typed = TypedAbove::default();
        let mut i = 0;
        while i < self.end {
            if self.removed[i].is_some() || is_quoted(lines[i]) {
                i += 1;
                continue;
            }
            if FORWARD.is_match(lines[i]) {
                break;
            }
            let Some((span, rule)) = header_at(lines, i, self.end) else {
                i += 1;
                continue;
            };
            let after = skip_blank(lines, i + span, self.end);
            if after < self.end && is_quoted(lines[after]) {
                let typed_above = typed.before(lines, &self.removed, i);
                if let Some(next) =
                    self.quote_below_header(i, span, rule, after, footer, typed_above)
                {
                    i = next;
                    continue;
                }
            }
            let mut start = i;
            while start > 0 && (is_blank(lines[start - 1]) || is_separator(lines[start - 1])) {
                start -= 1;
            }
            mark(&mut self.removed, i, i + span, rule);
            if (0..start).all(|j| is_blank(lines[j]) || self.removed[j].is_some())
                && after < self.end
            {
                // Nothing typed above the header: a pasted or forwarded message. Keep its
                // text, drop only the header.
                i += span;
                continue;
            }
            mark(&mut self.removed, i + span, self.end, Rule::BelowHeader);
            self.end = start;
            break;
        }
    }

    /// A header at `i` (`span` lines) with a quoted block from `after`, answered below: a
    /// bottom-posted reply (header and quote go), a top-posted one wrapped around the quote
    /// (only a closing below: the quote goes), or an inline reply (all stays). Returns where
    /// to go on; `None` when nothing was answered below (the quote is the old message).
    fn quote_below_header(
        &mut self,
        i: usize,
        span: usize,
        rule: Rule,
        after: usize,
        footer: usize,
        typed_above: bool,
    ) -> Option<usize> {
        let (lines, end) = (self.lines, self.end);
        let footer_after = |from: usize| if footer >= from { footer } else { end };
        let quote_end = quoted_run_end(lines, after, end);
        let answered_below = (quote_end..footer_after(quote_end)).any(|j| {
            !is_blank(lines[j])
                && !is_quoted(lines[j])
                && !is_sign_off(lines[j])
                && !is_signature_delimiter(lines[j])
        });
        if !answered_below || only_signature(lines, quote_end, end) {
            return None;
        }
        let more_quotes = (quote_end..end).any(|j| is_quoted(lines[j]));
        if !typed_above && !more_quotes {
            // Bottom-posted: one quoted block on top, the answer below it. Dropping the header
            // and the quote loses none of the person's words.
            mark(&mut self.removed, i, i + span, rule);
            mark(
                &mut self.removed,
                i + span,
                quote_end,
                Rule::QuoteBelowHeader,
            );
            return Some(quote_end);
        }
        let tail_end = footer_after(quote_end);
        if !more_quotes && only_closing(lines, quote_end, tail_end) {
            // A top-posted reply wrapped around the quote: only a closing ("Regards, Roman")
            // below it. The quote goes; the closing stays with the reply.
            let closing = skip_blank(lines, quote_end, tail_end);
            mark(&mut self.removed, i, i + span, rule);
            mark(&mut self.removed, i + span, closing, Rule::QuoteBelowHeader);
            return Some(closing);
        }
        // An inline reply: answers between quoted lines; the quotes are context the person
        // kept.
        Some(quote_end)
    }

    /// Step 3: a list footer and a signature at the end, then a trailing quoted block and its
    /// attribution (which may have been above them), then once more what that uncovered.
    fn trailing_quote(&mut self) {
        let lines = self.lines;
        self.end = cut_footer_and_signature(lines, &mut self.removed, self.end);
        let end = self.end;
        let mut j = end;
        while j > 0
            && (is_blank(lines[j - 1]) || is_quoted(lines[j - 1]))
            && self.removed[j - 1].is_none()
        {
            j -= 1;
        }
        let forwarded = (j..end)
            .find(|k| !is_blank(lines[*k]))
            .is_some_and(|k| FORWARD.is_match(lines[k]));
        if (j..end).any(|k| is_quoted(lines[k]))
            && (0..j).any(|k| !is_blank(lines[k]) && self.removed[k].is_none())
            && !forwarded
        {
            mark(&mut self.removed, j, end, Rule::TrailingQuote);
            self.end = strip_header_above(lines, &mut self.removed, j);
            self.end = cut_footer_and_signature(lines, &mut self.removed, self.end);
        }
    }

    /// Step 4: sign-offs on the last lines, with typed text above them.
    fn sign_offs_at_the_end(&mut self) {
        let lines = self.lines;
        while let Some(k) = (0..self.end)
            .rev()
            .find(|k| self.removed[*k].is_none() && !is_blank(lines[*k]))
        {
            let rule = if is_sign_off(lines[k]) {
                sign_off_rule(lines[k])
            } else if DASH_NAME.is_match(lines[k]) {
                Rule::DashName
            } else {
                break;
            };
            if !(0..k).any(|p| !is_blank(lines[p]) && self.removed[p].is_none()) {
                break;
            }
            self.removed[k] = Some(rule);
            self.end = k;
        }
    }

    /// The kept lines as the reply text, and (with `explain`) the removed ones.
    fn finish(mut self, explain: bool) -> Extraction {
        let lines = self.lines;
        let bound = self.end.max(first_bottom_kept(&self.removed, self.end));
        let mut kept: Vec<&str> = (0..bound)
            .filter(|k| self.removed[*k].is_none())
            .map(|k| lines[k])
            .collect();
        // Blank lines and a lone rule at the very end carry nothing (a rule with nothing
        // below it is what is left of a cut reply header).
        while kept.last().is_some_and(|l| is_blank(l) || is_separator(l)) {
            kept.pop();
        }
        // Nothing but quoted lines: the person typed nothing (a client re-sending history).
        if kept.iter().all(|l| is_blank(l) || is_quoted(l)) {
            for (k, line) in lines.iter().enumerate() {
                if self.removed[k].is_none() && !is_blank(line) {
                    self.removed[k] = Some(Rule::NothingTyped);
                }
            }
            kept.clear();
        }
        let text = kept.join("\n").trim_matches('\n').trim_end().to_owned();
        let removed = if explain {
            self.removed
                .iter()
                .enumerate()
                .filter_map(|(k, r)| {
                    r.map(|rule| Removed {
                        line: k + 1,
                        rule,
                        text: lines[k].to_owned(),
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        Extraction { text, removed }
    }
}

/// Whether anything typed lies above a line, read forward once over a pass.
#[derive(Default)]
struct TypedAbove {
    scanned: usize,
    typed: bool,
}

impl TypedAbove {
    fn before(&mut self, lines: &[&str], removed: &[Option<Rule>], i: usize) -> bool {
        while !self.typed && self.scanned < i {
            self.typed = !is_blank(lines[self.scanned]) && removed[self.scanned].is_none();
            self.scanned += 1;
        }
        self.typed
    }
}

/// For bottom-posted replies the kept lines sit after `end`'s usual bound; keep them.
fn first_bottom_kept(removed: &[Option<Rule>], end: usize) -> usize {
    if removed.iter().skip(end).any(|r| r.is_none()) && removed.contains(&Some(Rule::Marker)) {
        removed.len()
    } else {
        end
    }
}
