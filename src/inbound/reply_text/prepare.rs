//! Preparing a body for extraction: its lines, with long blank runs shortened and an
//! attribution or a header line that shares a line with something else put on its own.
//!
//! Every line is a slice of the body: nothing is copied, so a large message costs its line
//! index and no more, and the body is read once here rather than once per step.

use super::attribution::*;
use super::lines::*;
use super::patterns::*;
use super::shapes;

/// Runs of blank lines longer than this are shortened to it. They carry nothing a reader
/// sees, and each line costs the extraction a few dozen bytes of bookkeeping: a reply of a
/// million line breaks made it use seventy times its size in memory.
pub const MAX_BLANK_RUN: usize = 20;

/// The lines of `body` as the extraction reads them: a line break is `\n` or `\r\n`, runs of
/// more than [`MAX_BLANK_RUN`] blank lines are shortened to that many, and an attribution or a
/// header line run into other text is split off onto a line of its own.
pub(super) fn lines(body: &str) -> Vec<&str> {
    let mut lines = Vec::with_capacity(body.len() / 32 + 1);
    let mut run = 0;
    let mut pieces = body.split('\n').peekable();
    while let Some(piece) = pieces.next() {
        // The last piece ends the body, not a line break: a lone "\r" there stays.
        let line = match pieces.peek() {
            Some(_) => piece.strip_suffix('\r').unwrap_or(piece),
            None => piece,
        };
        run = if is_blank(line) { run + 1 } else { 0 };
        if run <= MAX_BLANK_RUN {
            lines.push(line);
        }
    }
    let lines = split_shared_attributions(lines);
    split_run_in_rules(lines)
}

/// Puts an attribution that shares a line with the person's text ("reply On Wed, Apr 4, 2012
/// at 3:59 PM, bob@example.com wrote:", "reply--- On …") on a line of its own, when quoted
/// lines follow it.
fn split_shared_attributions(lines: Vec<&str>) -> Vec<&str> {
    // Only a line right above quoted lines is asked, found by one backward pass.
    let mut split_at = Vec::new();
    let mut quoted_below = false;
    for (k, line) in lines.iter().enumerate().rev() {
        if quoted_below
            && !is_quoted(line)
            && line.len() <= MAX_HEADER_LINE
            && let Some(at) = shared_attribution(line)
        {
            split_at.push((k, typed_part(line, at).len(), at));
        }
        if !is_blank(line) {
            quoted_below = is_quoted(line);
        }
    }
    split_lines(lines, split_at)
}

/// Where an attribution starts in `line` after text the person typed, if one does.
fn shared_attribution(line: &str) -> Option<usize> {
    INNER_ATTRIBUTION
        .find_iter(line)
        // Past the space or dash the match starts with, which may be a multi-byte space (a
        // no-break space before "On").
        .map(|m| m.start() + line[m.start()..].chars().next().map_or(1, char::len_utf8))
        .find(|at| is_attribution(line[*at..].trim_end()))
        .filter(|at| !typed_part(line, *at).trim().is_empty())
}

/// What the person typed before an attribution at `at`, without the dashes and spaces that
/// joined them.
fn typed_part(line: &str, at: usize) -> &str {
    line[..at].trim_end_matches(['-', ' ', '\t'])
}

/// Puts a header line that a client ran into the rule above it
/// ("________________________________From: Dr Lee <…>") on a line of its own, below the rule.
fn split_run_in_rules(lines: Vec<&str>) -> Vec<&str> {
    let split_at: Vec<(usize, usize, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(k, line)| {
            shapes::run_in_rule(line)
                .filter(|at| shapes::label_line(&line[*at..]).is_some())
                .map(|at| (k, at, at))
        })
        .collect();
    split_lines(lines, split_at)
}

/// `lines` with each line named in `split_at` made two: (its index, where its first part
/// ends, where its second starts).
fn split_lines(lines: Vec<&str>, mut split_at: Vec<(usize, usize, usize)>) -> Vec<&str> {
    if split_at.is_empty() {
        return lines;
    }
    split_at.sort_unstable();
    let mut out = Vec::with_capacity(lines.len() + split_at.len());
    let mut next = split_at.into_iter().peekable();
    for (k, line) in lines.into_iter().enumerate() {
        match next.next_if(|(at_line, _, _)| *at_line == k) {
            Some((_, first_end, second)) => {
                out.push(&line[..first_end]);
                out.push(&line[second..]);
            }
            None => out.push(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_of_either_kind() {
        assert_eq!(lines("Yes.\r\nThanks\r\n"), ["Yes.", "Thanks", ""]);
        assert_eq!(lines("a\nb\r"), ["a", "b\r"], "a lone CR at the end stays");
        assert_eq!(lines("a\rb\nc"), ["a\rb", "c"], "a CR inside a line stays");
    }

    #[test]
    fn long_blank_runs_are_shortened() {
        let body = format!("top{}bottom", "\n".repeat(MAX_BLANK_RUN + 10));
        let got = lines(&body);
        assert_eq!(got.len(), MAX_BLANK_RUN + 2);
        assert_eq!(got.first(), Some(&"top"));
        assert_eq!(got.last(), Some(&"bottom"));
        let short = format!("top{}bottom", "\n".repeat(MAX_BLANK_RUN + 1));
        assert_eq!(
            lines(&short).len(),
            MAX_BLANK_RUN + 2,
            "a run of exactly the limit stays"
        );
    }

    #[test]
    fn an_attribution_run_into_typed_text_gets_its_own_line() {
        let body =
            "Fine by me. On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:\n> Shall we?";
        assert_eq!(
            lines(body),
            [
                "Fine by me.",
                "On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:",
                "> Shall we?"
            ]
        );
        // Not above quoted lines: the person's own sentence, left whole.
        let own = "Fine by me. On Wed, Apr 4, 2012 at 3:59 PM, bob@example.com wrote:\nSee you.";
        assert_eq!(lines(own).len(), 2);
    }

    #[test]
    fn a_header_run_into_a_rule_gets_its_own_line_and_the_rule_stays_whole() {
        assert_eq!(
            lines("-----Original Message-----From: Dr Lee <lee@clinic.example>"),
            [
                "-----Original Message-----",
                "From: Dr Lee <lee@clinic.example>"
            ]
        );
        assert_eq!(
            lines("________________________________From: Dr Lee"),
            ["________________________________", "From: Dr Lee"]
        );
        assert_eq!(lines("-- see you then"), ["-- see you then"]);
    }
}
