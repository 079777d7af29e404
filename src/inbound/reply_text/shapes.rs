//! Reply headers and sign-offs recognised by their shape, so a client, a language or a layout
//! the vocabulary does not list is still recognised: a block of `Label: value` lines with an
//! address and a date in it, the same block squashed onto one line, an attribution without
//! its colon directly above quoted text, an app's sign-off naming the app and the platform.
//!
//! The vocabulary ([`super::vocabulary`]) only raises confidence here; the gate is the shape,
//! and each shape also needs a sign that only a client leaves (a rule, markup, direction
//! marks, an address in brackets, a label the vocabulary knows, quoted text right below an
//! attribution), so that a person's own "Name: … / Email: … / Appointment: …" stays theirs.

use std::borrow::Cow;

use super::patterns::{
    APP, BRACKETED_ADDRESS, DATED, HAS_ADDRESS, HEADER_DATE, HEADER_FROM, HEADER_OTHER,
    MAX_HEADER_LINE, ORIGINAL_MESSAGE, VERB, VERB_AT_EDGE, YEAR_AND_TIME, names_brand,
    names_platform,
};

/// Invisible marks a client puts around labels, values and addresses: direction marks and
/// embeddings (right-to-left languages), zero-width spaces and joiners, a byte-order mark.
pub(super) fn is_mark(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}' | '\u{feff}'
    )
}

/// `line` without those marks; a copy only when it has any.
pub(super) fn unmarked(line: &str) -> Cow<'_, str> {
    if line.chars().any(is_mark) {
        Cow::Owned(line.chars().filter(|c| !is_mark(*c)).collect())
    } else {
        Cow::Borrowed(line)
    }
}

/// Characters a rule is drawn with.
fn is_rule_char(c: char) -> bool {
    matches!(c, '_' | '-' | '=' | '*' | '~')
}

/// A rule of at least eight characters, or an "original message" line between rules, with text
/// run into it on the same line ("________________________________From: …",
/// "-----Original Message-----From: …"): where the text starts, in bytes.
pub(super) fn run_in_rule(line: &str) -> Option<usize> {
    let lead = line.len() - line.trim_start().len();
    let rule = line[lead..]
        .chars()
        .take_while(|c| is_rule_char(*c))
        .count();
    if rule < 2 {
        return None;
    }
    let rest = &line[lead + rule..];
    if rest.trim().is_empty() {
        return None;
    }
    // Words between rules: the text starts after the second rule.
    let between = rest.find(is_rule_char).and_then(|words| {
        let closing = rest[words..]
            .chars()
            .take_while(|c| is_rule_char(*c))
            .count();
        let at = lead + rule + words + closing;
        (closing >= 2 && !line[at..].trim().is_empty() && ORIGINAL_MESSAGE.is_match(&line[..at]))
            .then_some(at)
    });
    between.or((rule >= 8).then_some(lead + rule))
}

/// A `Label: value` line as a client writes it.
#[derive(Debug)]
pub(super) struct LabelLine {
    /// The label, lower case, without markup.
    pub label: String,
    /// Whether it came in markup (`*From:*`, `**From:**`, `_From:_`).
    pub markup: bool,
    /// Whether direction or zero-width marks were around it.
    pub marks: bool,
}

/// How long a label may be: one to four words, as clients' labels are ("From", "Date
/// d'envoi", "Imię i nazwisko" is a form's, and still fits).
const MAX_LABEL_CHARS: usize = 32;

/// Reads `line` as a `Label: value` line: a label of one to four words of letters (no
/// digits, so "10:30" is not one), maybe in markup, a colon, and a value that is not a
/// link's remainder ("https://…").
pub(super) fn label_line(line: &str) -> Option<LabelLine> {
    if line.len() > MAX_HEADER_LINE {
        return None;
    }
    // Cheap refusal first: most lines have no colon near their start (':' or the last byte
    // of '：', which other characters share — they are refused below).
    let head = &line.as_bytes()[..line.len().min(4 * (MAX_LABEL_CHARS + 24))];
    if !head.iter().any(|b| *b == b':' || *b == 0x9a) {
        return None;
    }
    let clean = unmarked(line);
    let marks = matches!(clean, Cow::Owned(_));
    let text = clean.trim_start();
    let markup_len = text
        .bytes()
        .take_while(|b| *b == b'*' || *b == b'_')
        .count();
    if markup_len > 2 {
        return None;
    }
    let text = &text[markup_len..];
    let (colon, colon_char) = text
        .char_indices()
        .take(MAX_LABEL_CHARS + 4)
        .find(|(_, c)| matches!(c, ':' | '：'))?;
    let label = text[..colon].trim_end_matches(['*', '_']).trim();
    let value = text[colon + colon_char.len_utf8()..].trim_start_matches(['*', '_']);
    let value = value.trim();
    let markup = markup_len > 0 || text[..colon].trim_end().ends_with(['*', '_']);
    let words = label.split_whitespace().count();
    let label_chars = label.chars().count();
    let letters = label.chars().next().is_some_and(char::is_alphabetic)
        && label.chars().all(|c| {
            c.is_alphabetic()
                || matches!(c, ' ' | '-' | '\'' | '’' | '.' | '&' | '"')
                || (!c.is_ascii()
                    && !c.is_numeric()
                    && !c.is_whitespace()
                    && c != '，'
                    && c != '。')
        });
    (letters
        && (1..=4).contains(&words)
        && label_chars <= MAX_LABEL_CHARS
        && !value.is_empty()
        && !value.starts_with("//"))
    .then(|| LabelLine {
        label: label.to_lowercase(),
        markup,
        marks,
    })
}

/// Lines of a header block found by shape, and the signs of a client seen in them.
#[derive(Default)]
struct BlockSigns {
    labels: Vec<String>,
    /// Lines with an address.
    addressed: usize,
    /// Lines with an address in brackets, as clients write one after a name.
    bracketed: usize,
    dated: bool,
    /// A line with a whole date, year and time.
    whole_date: bool,
    /// A sign no person's text carries: a rule, markup, direction marks, a known label.
    client: bool,
}

impl BlockSigns {
    fn read(&mut self, line: &str) {
        self.addressed += usize::from(HAS_ADDRESS.is_match(line));
        self.dated |= DATED.is_match(line);
        self.whole_date |= YEAR_AND_TIME.is_match(line);
        self.bracketed += usize::from(BRACKETED_ADDRESS.is_match(line));
        self.client |=
            HEADER_FROM.is_match(line) || HEADER_DATE.is_match(line) || HEADER_OTHER.is_match(line);
    }

    /// Whether a client wrote the block: a sign no person's text carries, or else addresses
    /// in brackets on two lines (From and To) and a whole date — a person's own form, with
    /// "Email: jane@…" and "Contact: Jane <jane@…>", has one.
    fn by_a_client(&self) -> bool {
        self.client || (self.bracketed >= 2 && self.whole_date)
    }
}

/// The length of a header block that starts at line `i`, recognised by its shape: at least
/// three `Label: value` lines with different labels (continuation lines allowed, no blank
/// line inside), an address and a date or time among them, and a sign that a client wrote it
/// — `ruled` (a rule or an "original message" line right above, or run into the first line),
/// markup or direction marks on the labels, a label the vocabulary knows, or addresses in
/// brackets on two lines and a whole date.
pub(super) fn block_len(lines: &[&str], i: usize, end: usize, ruled: bool) -> Option<usize> {
    let first = label_line(lines[i])?;
    let mut signs = BlockSigns {
        client: ruled || first.markup || first.marks,
        ..BlockSigns::default()
    };
    signs.labels.push(first.label);
    let mut k = i + 1;
    while k < end && k <= i + 12 {
        let line = lines[k];
        if let Some(l) = label_line(line) {
            signs.client |= l.markup || l.marks;
            signs.labels.push(l.label);
        } else if line.trim().is_empty() || !line.starts_with([' ', '\t', '<', '[']) {
            break;
        }
        k += 1;
    }
    // The labels first (a person's "Note: …" line ends here); what the lines say only then.
    let n = signs.labels.len();
    let mut distinct = signs.labels.clone();
    distinct.sort();
    distinct.dedup();
    if n < 3 || distinct.len() != n {
        return None;
    }
    for line in &lines[i..k] {
        signs.read(line);
    }
    (signs.addressed > 0 && signs.dated && signs.by_a_client()).then_some(k - i)
}

/// Whether `line` is a whole header block squashed onto one line ("From: Dr Lee <lee@x>
/// Sent: Friday … 17:50 To: Jane <j@x> Subject: Results"): it starts as a label line, has at
/// least three labels (a colon right after a letter, then a space), an address and a date or
/// time, and an address in brackets or a label the vocabulary knows.
pub(super) fn squashed_block(line: &str) -> bool {
    // Three labels need three colons (':' or the last byte of '：'): most lines have fewer.
    if line
        .bytes()
        .filter(|b| *b == b':' || *b == 0x9a)
        .nth(2)
        .is_none()
    {
        return false;
    }
    let Some(first) = label_line(line) else {
        return false;
    };
    let clean = unmarked(line);
    let chars: Vec<char> = clean.chars().collect();
    let labels = (1..chars.len().saturating_sub(1))
        .filter(|&k| {
            // French typography puts a space before the colon ("De : … Objet : …").
            let before = if chars[k - 1] == ' ' && k >= 2 {
                chars[k - 2]
            } else {
                chars[k - 1]
            };
            matches!(chars[k], ':' | '：')
                && (before.is_alphabetic() || matches!(before, '*' | '_'))
                && (chars[k + 1].is_whitespace() || matches!(chars[k + 1], '*' | '_'))
        })
        .count();
    labels >= 3
        && HAS_ADDRESS.is_match(&clean)
        && DATED.is_match(&clean)
        && (BRACKETED_ADDRESS.is_match(&clean)
            || first.markup
            || first.marks
            || HEADER_FROM.is_match(&clean)
            || HEADER_DATE.is_match(&clean))
}

/// Whether `text` ends like a sentence, not like a date or an abbreviation: "…works for me."
/// does, "20. Okt." and "Dr." do not.
pub(super) fn ends_sentence(text: &str) -> bool {
    let t = text.trim_end();
    match t.chars().last() {
        Some('!' | '?' | '。' | '！' | '？' | '।' | '…') => true,
        Some('.') => {
            // An abbreviation is short and either capitalised ("Dr.", "Okt.") or right after
            // a date's number ("20 oct.", "2016 г."); "works for me." is a sentence.
            let word: Vec<char> = t[..t.len() - 1]
                .chars()
                .rev()
                .take_while(|c| c.is_alphabetic())
                .collect();
            let capitalised = word.last().is_some_and(|c| c.is_uppercase());
            let before = t[..t.len() - 1 - word.iter().map(|c| c.len_utf8()).sum::<usize>()]
                .trim_end()
                .trim_end_matches(['.', ',']);
            let after_number = before.ends_with(|c: char| c.is_ascii_digit());
            let abbreviation = !word.is_empty() && word.len() <= 4 && (capitalised || after_number);
            !abbreviation && !t[..t.len() - 1].ends_with(|c: char| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// Whether `text` ends like the date part of an attribution, so that its name and verb may
/// follow on the next line: a digit, a comma, or a time's "PM", "Uhr", "h".
pub(super) fn ends_like_date(text: &str) -> bool {
    let t = text.trim_end();
    if t.ends_with([',', '，', '、']) {
        return true;
    }
    let t = t.trim_end_matches([')', ']']);
    if t.chars().last().is_some_and(char::is_numeric) {
        return true;
    }
    let last = t
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or("")
        .to_lowercase();
    matches!(
        last.as_str(),
        "am" | "pm" | "a.m." | "p.m." | "uhr" | "h" | "u" | "giờ" | "น." | "ч." | "г." | "р."
    )
}

/// Whether `text` (a line, or wrapped lines joined) has an attribution's shape without its
/// colon: a verb of any known language and a date, a time or an address; or, as clients
/// that write no verb do, an address in brackets and a time of day. Only ever asked of text
/// directly above quoted lines.
pub(super) fn attribution_without_colon(text: &str) -> bool {
    if text.len() > MAX_HEADER_LINE || ends_sentence(text) {
        return false;
    }
    // The verb where clients put it: last ("… Dr Lee <lee@x> wrote"), or before a date that
    // ends the line ("Dr Lee <lee@x> schrieb am 20.10.2017 um 17:50") — not inside a sentence
    // that goes on ("… Dr Lee wrote that I should rest").
    let placed = VERB_AT_EDGE.is_match(text) || (VERB.is_match(text) && ends_like_date(text));
    (placed && (DATED.is_match(text) || HAS_ADDRESS.is_match(text)))
        || (BRACKETED_ADDRESS.is_match(text) && DATED.is_match(text))
}

/// Whether `line` is a short "<name> <verb>:" or "<verb> <name>:" line ("Dr Lee wrote:",
/// "كتب Dr Lee:"), which clients write when they know no date. Only ever asked of a line
/// directly above quoted lines.
pub(super) fn name_and_verb(line: &str) -> bool {
    let t = line.trim();
    if !t.ends_with([':', '：']) || t.chars().count() > 80 {
        return false;
    }
    let t = t.trim_end_matches([':', '：']).trim_end();
    let Some(verb) = VERB_AT_EDGE.find(t) else {
        return false;
    };
    let name = format!("{} {}", &t[..verb.start()], &t[verb.end()..]);
    // What is left is a name: a few words, each capitalised or in a script without case
    // ("Dr Lee", "Ο Dr Lee", "מאיר"), or an address — not "what the doctor".
    let words: Vec<&str> = name.split_whitespace().collect();
    (1..=4).contains(&words.len())
        && words
            .iter()
            .all(|w| capitalised(w) || w.starts_with(['<', '"', '\'', '«', '“']) || w.contains('@'))
}

/// Whether `word` starts as a name does: with a capital, or in a script without case.
pub(super) fn capitalised(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| c.is_uppercase() || (c.is_alphabetic() && !c.is_lowercase()))
}

/// Words that begin a person's own sentence about their phone or app ("I use Gmail on
/// Android"): such a line is never an app's sign-off.
const FIRST_PERSON: &[&str] = &[
    "i", "i'm", "i’m", "i've", "i’ve", "we", "je", "j'ai", "j’ai", "nous", "ich", "wir", "yo",
    "eu", "io", "ik", "jag", "jeg", "minä", "ja", "én", "ben", "я", "мы", "ми",
];

/// Whether `line` is an app's sign-off by its shape, in any language and word order: a
/// short line naming a mail app and a platform ("Gesendet mit BlueMail für Android", "Android
/// için Yandex Mail'den gönderildi", "네이버 메일 Android 앱에서 보냄"), without a sentence's
/// punctuation and not starting with "I" or "we".
pub(super) fn app_sign_off(line: &str) -> bool {
    let t = line.trim();
    // Naming a platform is what most lines lack: asked first, after the length.
    if t.len() > 4 * 70 || !names_platform(t) {
        return false;
    }
    if t.chars().count() > 70 || t.split_whitespace().nth(8).is_some() {
        return false;
    }
    if t.contains([',', ';', '?', '!', '，', '。', '？', '！']) || ends_sentence(t) {
        return false;
    }
    let first = t.split_whitespace().next().unwrap_or("");
    if FIRST_PERSON
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w) || (!first.is_ascii() && first.to_lowercase() == *w))
    {
        return false;
    }
    names_brand(&APP, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        for line in [
            "From: Dr Lee <lee@clinic.example>",
            "**Von:** Dr Lee",
            "*De :* Dr Lee",
            "\u{200f}من:\u{200f} Dr Lee",
            "प्रेषक: Dr Lee",
            "ส่ง: วันศุกร์ที่ 20 ตุลาคม 2017 17:50",
            "Date d'envoi : vendredi",
        ] {
            assert!(label_line(line).is_some(), "{line}");
        }
        for line in [
            "10:30 works for me",
            "https://example.com/a",
            "This is a long sentence that happens to end: with a colon",
            "From:",
        ] {
            assert!(label_line(line).is_none(), "{line}");
        }
    }

    #[test]
    fn rules_run_into_a_header() {
        let line = "________________________________From: Dr Lee <lee@clinic.example>";
        assert_eq!(run_in_rule(line), Some(32));
        let line = "-----Original Message-----From: Dr Lee <lee@clinic.example>";
        let at = run_in_rule(line).unwrap();
        assert_eq!(&line[at..], "From: Dr Lee <lee@clinic.example>");
        let line = "-----Ursprüngliche Nachricht-----Von: Dr Lee";
        assert_eq!(&line[run_in_rule(line).unwrap()..], "Von: Dr Lee");
        assert_eq!(run_in_rule("-- a note -- on the dose: high"), None);
        assert_eq!(run_in_rule("________________________________"), None);
    }

    #[test]
    fn a_form_is_not_a_header_block() {
        let form = [
            "Name: Jane Doe",
            "Email: jane@example.net",
            "Appointment: 24.10.2017 10:30",
            "",
            "See you then.",
        ];
        assert_eq!(block_len(&form, 0, form.len(), false), None);
        let contact = [
            "Email: jane@example.net",
            "Contact: Jane Doe <jane@example.net>",
            "Appointment: 24.10.2017 10:30",
        ];
        assert_eq!(block_len(&contact, 0, contact.len(), false), None);
        let outlook = [
            "Dari: Dr Lee <lee@clinic.example>",
            "Dikirim: Jumat, 20 Oktober 2017 17.50",
            "Kepada: Siti <jane@example.net>",
            "Subjek: Hasil",
            "",
            "Old text.",
        ];
        assert_eq!(block_len(&outlook, 0, outlook.len(), false), Some(4));
    }

    #[test]
    fn sentences_dates_and_sign_offs() {
        assert!(ends_sentence("Thursday works for me."));
        assert!(!ends_sentence("20 окт. 2016 г."));
        assert!(!ends_sentence("den 20. okt."));
        assert!(ends_sentence("Am Freitag um 17:50 ist alles bereit."));
        assert!(!ends_sentence("Am Fr., 20. Okt."));
        assert!(!ends_sentence("On Fri, Oct 20, 2017 at 5:50 PM"));
        assert!(ends_like_date("On Fri, Oct 20, 2017 at 5:50 PM"));
        assert!(!ends_like_date("On Thursday at 10:30 I can come"));
        assert!(app_sign_off("Gesendet mit BlueMail für Android"));
        assert!(app_sign_off("네이버 메일 Android 앱에서 보냄"));
        assert!(!app_sign_off("I use Gmail on Android"));
        assert!(!app_sign_off(
            "My iPhone is broken, please call the landline."
        ));
        assert!(name_and_verb("Dr Lee wrote:"));
        assert!(name_and_verb("كتب Dr Lee:"));
        assert!(!name_and_verb("Here is what the lab wrote to me about it:"));
        assert!(!name_and_verb("Here is what the doctor wrote:"));
    }
}
