//! HTML to text for HTML-only replies, dropping what mail clients mark as quoted history.
//!
//! Clients wrap the message being answered in recognisable containers: Gmail's
//! `div.gmail_quote`, Apple Mail's and Thunderbird's `blockquote type="cite"` (with
//! `div.moz-cite-prefix` as the attribution), Outlook's `div#divRplyFwdMsg` and
//! `div#appendonsend` (after which everything is history), Yahoo's `div.yahoo_quoted`, and so
//! on. Those are history whatever their language, so they are removed here, before the text
//! heuristics run. Other blockquotes become `> ` lines, which the text stage understands.
//!
//! This is a small tolerant scanner, not a full HTML parser: mail HTML is often malformed, and
//! all that is needed is the text, the line structure and the quote containers. It runs in one
//! pass over the input.

/// Elements whose content never reaches the text.
const HIDDEN: &[&str] = &["head", "style", "script", "title", "template"];
/// Elements with no end tag.
const VOID: &[&str] = &[
    "br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base", "source",
];
/// Elements that start a new line.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "section",
    "article",
    "header",
    "footer",
    "center",
    "dl",
    "dt",
    "dd",
];

struct Open {
    name: String,
    /// Content is dropped (hidden element or quote container).
    drops: bool,
    /// A blockquote kept as `> ` lines.
    quotes: bool,
    pre: bool,
}

/// Open elements deeper than this are not tracked: their content is kept as text of the
/// element around them. Real mail nests a few dozen levels; without a cap, a reply of unclosed
/// tags made every later tag scan a stack as long as the message.
pub const MAX_DEPTH: usize = 256;

/// Quote levels beyond this are written as this many `> `: each level is a prefix on every
/// line, so a reply of nested blockquotes grew quadratically in memory.
pub const MAX_QUOTE_DEPTH: usize = 16;

/// The open elements, with counts kept as they change so that no tag needs to look through the
/// whole stack: how many drop their content, quote or keep whitespace, and how many of each
/// name are open (a closing tag whose element is not open costs one lookup).
#[derive(Default)]
struct Stack {
    open: Vec<Open>,
    drops: usize,
    quotes: usize,
    pre: usize,
    names: std::collections::HashMap<String, usize>,
}

impl Stack {
    fn dropping(&self) -> bool {
        self.drops > 0
    }

    fn quote_depth(&self) -> usize {
        self.quotes.min(MAX_QUOTE_DEPTH)
    }

    fn push(&mut self, o: Open) {
        if self.open.len() >= MAX_DEPTH {
            return;
        }
        self.drops += usize::from(o.drops);
        self.quotes += usize::from(o.quotes);
        self.pre += usize::from(o.pre);
        *self.names.entry(o.name.clone()).or_default() += 1;
        self.open.push(o);
    }

    /// Closes the innermost open `name` and everything opened inside it; returns whether any
    /// closed element was a block. A name that is not open is ignored.
    fn close(&mut self, name: &str) -> Option<bool> {
        if self.names.get(name).is_none_or(|n| *n == 0) {
            return None;
        }
        let mut block = false;
        while let Some(o) = self.open.pop() {
            self.drops -= usize::from(o.drops);
            self.quotes -= usize::from(o.quotes);
            self.pre -= usize::from(o.pre);
            if let Some(n) = self.names.get_mut(&o.name) {
                *n -= 1;
            }
            block |= BLOCK.contains(&o.name.as_str());
            if o.name == name {
                break;
            }
        }
        Some(block)
    }
}

/// What kind of history marker an element is.
enum Quote {
    None,
    /// Drop this element and its content.
    Subtree,
    /// Drop this element and everything after it in the document.
    Rest,
}

fn classify(name: &str, attrs: &str) -> Quote {
    let a = attrs.to_ascii_lowercase();
    let has = |s: &str| a.contains(s);
    if has("divrplyfwdmsg")
        || has("appendonsend")
        || has("mail-editor-reference-message-container")
        || has("ms-outlook-mobile-reference-message")
        || (name == "hr" && has("stopspelling"))
    {
        return Quote::Rest;
    }
    if has("gmail_quote")
        || has("gmail_attr")
        || has("yahoo_quoted")
        || has("moz-cite-prefix")
        || has("outlookmessageheader")
        || has("protonmail_quote")
        || has("zmail_extra")
        || has("\"reply-quoted\"")
        || (name == "blockquote"
            && (has("type=\"cite\"") || has("type=cite") || has("type='cite'")))
    {
        return Quote::Subtree;
    }
    Quote::None
}

/// Converts an HTML body to text with LF line endings, in one pass: time and memory linear in
/// the input, however it nests or fails to close.
pub fn to_text(html: &str) -> String {
    let mut out = Text::default();
    let mut stack = Stack::default();
    let bytes = html.as_bytes();
    let mut i = 0;
    let mut text_start = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        // Flush the text before this tag.
        if !stack.dropping() {
            out.push_text(&decode_entities(&html[text_start..i]), stack.pre > 0);
        }
        if html[i..].starts_with("<!--") {
            i = html[i + 4..]
                .find("-->")
                .map_or(bytes.len(), |e| i + 4 + e + 3);
            text_start = i;
            continue;
        }
        let end = tag_end(bytes, i + 1);
        // A tag cut off by the end of the input has no `>` to leave out; its last byte may be
        // inside a multi-byte character.
        let inner = if bytes.get(end.wrapping_sub(1)) == Some(&b'>') && end > i + 1 {
            &html[i + 1..end - 1]
        } else {
            &html[i + 1..end]
        };
        i = end;
        text_start = i;
        let closing = inner.starts_with('/');
        let body = inner.trim_start_matches('/');
        let name_len = body
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .unwrap_or(body.len());
        let name = body[..name_len].to_ascii_lowercase();
        if name.is_empty() || name.starts_with('!') || name.starts_with('?') {
            continue;
        }
        let attrs = &body[name_len..];
        if closing {
            if let Some(block) = stack.close(&name)
                && block
                && !stack.dropping()
            {
                out.block(stack.quote_depth());
            }
            continue;
        }
        match classify(&name, attrs) {
            Quote::Rest => break,
            Quote::Subtree if !VOID.contains(&name.as_str()) => {
                stack.push(Open {
                    name,
                    drops: true,
                    quotes: false,
                    pre: false,
                });
                continue;
            }
            _ => {}
        }
        if stack.dropping() {
            if !VOID.contains(&name.as_str()) && !attrs.trim_end().ends_with('/') {
                stack.push(Open {
                    name,
                    drops: false,
                    quotes: false,
                    pre: false,
                });
            }
            continue;
        }
        match name.as_str() {
            "br" => out.newline(stack.quote_depth()),
            "hr" => {
                out.block(stack.quote_depth());
                out.push_raw("----------");
                out.newline(stack.quote_depth());
            }
            _ => {}
        }
        if VOID.contains(&name.as_str()) || attrs.trim_end().ends_with('/') {
            continue;
        }
        if BLOCK.contains(&name.as_str()) {
            out.block(stack.quote_depth());
        }
        let quotes = name == "blockquote";
        stack.push(Open {
            drops: HIDDEN.contains(&name.as_str()),
            quotes,
            pre: name == "pre",
            name,
        });
        if quotes {
            out.block(stack.quote_depth());
        }
    }
    if i >= bytes.len() && text_start < bytes.len() && !stack.dropping() {
        out.push_text(&decode_entities(&html[text_start..]), false);
    }
    out.finish()
}

/// Index just past the `>` closing the tag that starts before `from`, honouring quoted
/// attribute values.
fn tag_end(bytes: &[u8], from: usize) -> usize {
    let mut quote = None;
    let mut j = from;
    while j < bytes.len() {
        let b = bytes[j];
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == b'>' => return j + 1,
            None => {}
        }
        j += 1;
    }
    bytes.len()
}

/// Accumulates text lines with HTML whitespace rules and blockquote prefixes.
///
/// Lines go straight into one output string as they end (runs of blank lines made by nested
/// blocks collapsed to one, no-break spaces made plain): a list of a String per line cost a
/// reply of nested blockquotes several times its size.
#[derive(Default)]
struct Text {
    out: String,
    /// Whether `out` has a line yet, and whether its last line was blank.
    started: bool,
    last_blank: bool,
    current: String,
    depth: usize,
    pending_space: bool,
}

impl Text {
    fn prefix(&mut self) {
        if self.current.is_empty() && self.depth > 0 {
            self.current.push_str(&"> ".repeat(self.depth));
        }
    }

    fn push_text(&mut self, s: &str, pre: bool) {
        if pre {
            for (n, part) in s.split('\n').enumerate() {
                if n > 0 {
                    self.newline(self.depth);
                }
                self.prefix();
                self.current.push_str(part);
            }
            return;
        }
        for (n, word) in s.split(|c: char| c.is_ascii_whitespace()).enumerate() {
            if n > 0 {
                self.pending_space = true;
            }
            if word.is_empty() {
                continue;
            }
            let at_line_start = self.current.trim_start_matches("> ").is_empty();
            self.prefix();
            if self.pending_space && !at_line_start {
                self.current.push(' ');
            }
            self.pending_space = false;
            self.current.push_str(word);
        }
    }

    fn push_raw(&mut self, s: &str) {
        self.prefix();
        self.current.push_str(s);
    }

    /// Starts a new line unless already at the start of one (block boundaries).
    fn block(&mut self, depth: usize) {
        if self.current.trim_start_matches("> ").trim().is_empty() {
            self.current.clear();
            self.depth = depth;
            self.pending_space = false;
        } else {
            self.newline(depth);
        }
    }

    /// Ends the current line, even an empty one (`<br>`).
    fn newline(&mut self, depth: usize) {
        let line = self.current.trim_end();
        let blank = line.trim_start_matches('>').trim().is_empty();
        // Collapse runs of blank lines made by nested blocks into one.
        if !(blank && self.started && self.last_blank) {
            if self.started {
                self.out.push('\n');
            }
            for (k, part) in line.split('\u{a0}').enumerate() {
                if k > 0 {
                    self.out.push(' ');
                }
                self.out.push_str(part);
            }
            self.started = true;
            self.last_blank = blank;
        }
        self.current.clear();
        self.depth = depth;
        self.pending_space = false;
    }

    fn finish(mut self) -> String {
        self.newline(0);
        let mut out = self.out;
        let end = out.trim_end_matches('\n').len();
        out.truncate(end);
        let start = out.len() - out.trim_start_matches('\n').len();
        out.drain(..start);
        out
    }
}

/// Decodes character references; unknown names are left as they are.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        // Only the next few bytes can hold a reference's end: searching the rest of the text
        // for every `&` made a reply of ampersands quadratic.
        let end = rest.as_bytes()[1..]
            .iter()
            .take(12)
            .position(|b| *b == b';')
            .map(|e| e + 1);
        let decoded = end.and_then(|e| {
            let name = &rest[1..e];
            let c = if let Some(num) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(num, 16).ok().and_then(char::from_u32)
            } else if let Some(num) = name.strip_prefix('#') {
                num.parse::<u32>().ok().and_then(char::from_u32)
            } else {
                named(name)
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn named(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "hellip" => '…',
        "rsquo" => '’',
        "lsquo" => '‘',
        "rdquo" => '”',
        "ldquo" => '“',
        "eacute" => 'é',
        "egrave" => 'è',
        "agrave" => 'à',
        "ccedil" => 'ç',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "szlig" => 'ß',
        "euro" => '€',
        "copy" => '©',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_breaks_and_entities() {
        let t = to_text(
            "<html><head><style>p{}</style></head><body><p>Hi&nbsp;there,</p><div>line one<br>line&amp;two</div></body></html>",
        );
        assert_eq!(t, "Hi there,\nline one\nline&two");
    }

    #[test]
    fn gmail_quote_is_dropped() {
        let t = to_text(
            r#"<div dir="ltr">Thanks, see you Tuesday.</div><br><div class="gmail_quote"><div class="gmail_attr">On Mon, Jane wrote:<br></div><blockquote class="gmail_quote">old text</blockquote></div>"#,
        );
        assert_eq!(t, "Thanks, see you Tuesday.");
    }

    #[test]
    fn outlook_reply_header_cuts_the_rest() {
        let t = to_text(
            r#"<div>Fine, thanks.</div><hr><div id="divRplyFwdMsg"><b>From:</b> Clinic</div><div>old</div>"#,
        );
        assert_eq!(t.trim_end_matches(['-', '\n']), "Fine, thanks.");
    }

    #[test]
    fn plain_blockquotes_become_quote_lines() {
        let t = to_text("<p>Answer</p><blockquote><p>question</p></blockquote><p>more</p>");
        assert_eq!(t, "Answer\n> question\nmore");
    }

    #[test]
    fn cite_blockquotes_are_history() {
        let t = to_text(
            r#"<div>Yes.</div><div class="moz-cite-prefix">On 1/2, A wrote:</div><blockquote type="cite">old</blockquote>"#,
        );
        assert_eq!(t, "Yes.");
    }

    #[test]
    fn malformed_html_does_not_panic() {
        for s in [
            "<",
            "<div",
            "<<>>",
            "&",
            "&#xZZ;",
            "&#99999999;",
            "<p attr='x>y'>t</p>",
            "</div></div>text",
        ] {
            let _ = to_text(s);
        }
        assert_eq!(
            decode_entities("a &amp b &#x41; &#66; &unknown;"),
            "a &amp b A B &unknown;"
        );
    }
}
