//! The extraction itself, step by step (see the module's documentation for the order).

use super::attribution::*;
use super::copies::*;
use super::endings::*;
use super::headers::*;
use super::lines::*;
use super::patterns::*;
use super::prepare::*;
use super::{Extraction, Known, Reason};
use crate::domain::mail::REPLY_MARKER;

/// The extraction; with `explain`, also every removed line with its reason.
pub(super) fn extract(body: &str, known: &Known, explain: bool) -> Extraction {
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

/// For bottom-posted replies the kept lines sit after `end`'s usual bound; keep them.
pub(super) fn first_bottom_kept(removed: &[Option<Reason>], end: usize) -> usize {
    if removed.iter().skip(end).any(|r| r.is_none()) && removed.contains(&Some(Reason::Marker)) {
        removed.len()
    } else {
        end
    }
}
