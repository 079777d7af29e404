//! The line patterns reply-text extraction recognises: attribution lines in many languages,
//! Outlook-style header blocks, separators, signatures and mobile sign-offs.
//!
//! Everything here is the `regex` crate (finite automata, no backtracking), so every pattern
//! runs in time linear in the line it is given. Patterns use `.*` rather than bounded repeats
//! such as `.{0,300}` (which multiply the automaton's size and push the engine onto its slow
//! path), and ASCII word boundaries; callers bound line lengths instead ([`MAX_HEADER_LINE`]).

/// Lines longer than this are never reply headers, and are not matched against the patterns.
pub const MAX_HEADER_LINE: usize = 400;

use std::sync::LazyLock;

use regex::{Regex, RegexSet};

use super::vocabulary::{
    APPS, DEVICES, MORE_SENT_FROM, MORE_SENT_FROM_SUFFIX, MORE_WROTE, PLATFORMS, alternation,
    longest_first, words,
};

fn re(p: &str) -> Regex {
    Regex::new(p).expect("built-in pattern compiles")
}

/// Leading marks a header line may carry: spaces, and the direction marks right-to-left
/// clients put before a label.
const LEAD: &str = r"^[\s\u{200e}\u{200f}\u{202a}-\u{202e}]*";

/// A date or a time as clients write them in attributions: a time of day ("17:50", "17.50"),
/// a year, a numeric date.
const DATE_OR_TIME: &str = r"(\d{1,2}[:.]\d{2}|(?-u:\b)(19|20)\d{2}(?-u:\b)|\d{1,2}[./-]\d{1,2}[./-]\d{2,4}|\d{4}年|\d{4}년)";

/// An address, bare or in brackets.
const ADDRESS: &str = r"[^\s<>()\[\]@]+@[^\s<>()\[\]@]+\.[^\s<>()\[\]@]+";

/// Attribution verbs written right after the name, without a space in between (Chinese,
/// Japanese, Korean, Thai) or with one (everyone else).
fn verbs() -> (String, String) {
    verbs_of(&words(|l| l.wrote))
}

/// [`verbs`] for a list of words.
fn verbs_of(all: &[&str]) -> (String, String) {
    let (unspaced, spaced): (Vec<&str>, Vec<&str>) = all.iter().partition(|w| {
        w.chars().next().is_some_and(|c| {
            matches!(c as u32, 0x0e00..=0x0e7f | 0x3040..=0x30ff | 0x4e00..=0x9fff | 0xac00..=0xd7af)
        })
    });
    (alternation(&spaced), alternation(&unspaced))
}

/// Every attribution verb: the table's languages' and the others' ([`MORE_WROTE`]).
fn all_verbs() -> Vec<&'static str> {
    let mut all = words(|l| l.wrote);
    all.extend(MORE_WROTE);
    longest_first(all)
}

/// An attribution verb of any language the project knows, the table's and the others
/// ([`MORE_WROTE`]), as a word of its own (or anywhere, for scripts written without spaces).
pub static VERB: LazyLock<Regex> = LazyLock::new(|| {
    let (spaced, unspaced) = verbs_of(&all_verbs());
    re(&format!(
        r"(?i)((^|[\s>)\x22'»”,(])({spaced})($|[\s:：(,])|({unspaced}))"
    ))
});

/// The same verb at the start or the end of a line (its colon aside): "Dr Lee wrote:",
/// "كتب Dr Lee:", "Dr Lee 写道：".
pub static VERB_AT_EDGE: LazyLock<Regex> = LazyLock::new(|| {
    let verbs = alternation(&all_verbs());
    re(&format!(
        r"(?i)^\s*({verbs})(\s|$)|(^|[\s>)\x22'»”,]|[\p{{Han}}\p{{Hangul}}\p{{Thai}}\p{{Hiragana}}\p{{Katakana}}])({verbs})\s*(\(\w+\))?\s*[:：]?\s*$"
    ))
});

/// Gmail's attributions that start with a numeric date and carry no colon: "2013/7/20 Sam
/// <sam@example.com>", "2016-03-03 17:21 GMT+01:00 Some One".
pub static NUMERIC_DATE_FIRST: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s.*(<[^>\s]+@[^>\s]+>|GMT[+-]\d)"));

/// A year (four digits, in any script's digits: "2017", "۲۰۱۷") and a time of day in one line,
/// as a header block's date line has them.
pub static YEAR_AND_TIME: LazyLock<Regex> =
    LazyLock::new(|| re(r"\d{4}.*\d{1,2}[:.]\d{2}|\d{1,2}[:.]\d{2}.*\d{4}"));

/// A date or a time of day anywhere in a line ([`DATE_OR_TIME`]).
pub static DATED: LazyLock<Regex> = LazyLock::new(|| re(DATE_OR_TIME));

/// An address anywhere in a line.
pub static HAS_ADDRESS: LazyLock<Regex> = LazyLock::new(|| re(ADDRESS));

/// An address as clients write it after a name, in brackets or after `mailto:` — not as a
/// person types theirs into a sentence or a form.
pub static BRACKETED_ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(r"<\s*(mailto:)?[^\s<>@]+@[^\s<>]+\s*>|\[\s*mailto:[^\s\]]+\]|\(\s*[^\s()@]+@[^\s()]+\s*\)")
});

/// A mail app or provider (with a platform, [`names_platform`], a sign-off by its shape); see
/// [`names_brand`].
pub static APP: LazyLock<Regex> = LazyLock::new(|| brand(APPS));

/// Whether `line` names a system or device a sign-off names after an app ([`PLATFORMS`], all
/// ASCII) where a word starts (after anything but a Latin letter, so "ב-Android" and
/// "Androidille" count): a scan of the word starts, faster than a case-insensitive pattern
/// on the short lines it is asked of.
pub fn names_platform(line: &str) -> bool {
    let bytes = line.as_bytes();
    let mut in_word = false;
    for (k, b) in bytes.iter().enumerate() {
        let letter = b.is_ascii_alphabetic();
        if letter
            && !in_word
            && PLATFORM_INITIALS.contains(&b.to_ascii_lowercase())
            && PLATFORMS.iter().any(|p| {
                bytes[k..]
                    .get(..p.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(p.as_bytes()))
            })
        {
            return true;
        }
        in_word = letter;
    }
    false
}

/// The first letters of [`PLATFORMS`], so most word starts are refused at once.
const PLATFORM_INITIALS: &[u8] = b"aiwmhgxp";

/// Any of `names`, case-insensitively. A plain alternation of words, so the engine can look for
/// them as literals; where a word starts is checked by [`names_brand`].
fn brand(names: &[&'static str]) -> Regex {
    re(&format!(
        r"(?i){}",
        alternation(&longest_first(names.to_vec()))
    ))
}

/// Whether `brand` finds a name in `line` where a word starts: after the line's start or
/// anything but a Latin letter ("מ-Yahoo", "ב-Android" and "Androidille" count; "Moniosa"
/// does not).
pub fn names_brand(brand: &Regex, line: &str) -> bool {
    brand.find_iter(line).any(|m| {
        !line[..m.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphabetic())
    })
}

/// A whole attribution line (possibly two or three wrapped lines joined with a space).
pub static ATTRIBUTION: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new([
        // English: "On Tue, 1 Mar 2011 at 18:02, Jane <j@x> wrote:"
        r"(?i)^on(?-u:\b).*(?-u:\b)(wrote|writes|said)\s*:?$",
        // "At 6/16/2016 08:32 PM, you wrote:"
        r"(?i)^at(?-u:\b).*(?-u:\b)wrote\s*:?$",
        // "Jane Doe <jane@example.com> wrote:" / "jane@example.com wrote:"
        r"(?i)^.*(<[^>\s]+@[^>\s]+>|(?-u:\b)\S+@\S+\.\S+)\s*(wrote|writes|a écrit|schrieb|escribió|escreveu|ha scritto|skrev|kirjoitti|napisał|napisała|написал|написала|yazdı)\s*:?$",
        // French
        r"(?i)^le(?-u:\b).*(?-u:\b)a\s+écrit\s*:?$",
        // German ("Am ... schrieb Jane:", "Jane schrieb am ...:")
        r"(?i)^am(?-u:\b).*(?-u:\b)schrieb(?-u:\b).*:$",
        r"(?i)^.*(?-u:\b)schrieb\s+am(?-u:\b).*:$",
        // Spanish
        r"(?i)^el(?-u:\b).*(?-u:\b)escribió\s*:?$",
        // Dutch
        r"(?i)^op(?-u:\b).*(?-u:\b)(schreef|geschreven)(?-u:\b).*:?$",
        // Italian
        r"(?i)^(il|in data)(?-u:\b).*(?-u:\b)ha\s+scritto\s*:?$",
        // Portuguese
        r"(?i)^(em|no dia|a)(?-u:\b).*(?-u:\b)escreveu\s*:?$",
        // Scandinavian
        r"(?i)^(den|på|d\.)(?-u:\b).*(?-u:\b)skrev(?-u:\b).*:?$",
        r"(?i)^.*(?-u:\b)skrev\s+(den|på)(?-u:\b).*:$",
        // Finnish, Polish, Czech, Turkish, Russian
        r"(?i)^.*\S\s+kirjoitti\s*:?$",
        r"(?i)^(w dniu|dnia|dne)(?-u:\b).*(?-u:\b)(napisał|napisała|napsal|napsala)(?-u:\b).*:?$",
        r"(?i)^.*(?-u:\b)tarihinde(?-u:\b).*(?-u:\b)yazdı\s*:?$",
        r"(?i)^.*\S\s+(написал|написала|пишет)\s*:?$",
        // Gmail's numeric dates: "2013/7/20 Sam <sam@example.com>", "2016-03-03 17:21
        // GMT+01:00 Some One"
        r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\s.*<[^>\s]+@[^>\s]+>\s*:?$",
        r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2} GMT[+-]\d{1,2}:\d{2}\s+\S.*$",
        // Japanese ("2011年3月1日 12:00 Jane <j@x>:"), Chinese ("在 2011年3月1日，Jane 写道：")
        r"^\d{4}年\d{1,2}月\d{1,2}日.*[:：]$",
        r"^.*(写道|寫道)\s*[:：]$",
        r"^在.*(写道|寫道)\s*[:：]?$",
    ])
    .expect("built-in patterns compile")
});

/// Attributions in any listed language, by their shape: a date, a time or an address, then
/// the language's verb at the very end ("pe 20. lokak. 2017 klo 17.50 Name <n@x> kirjoitti:",
/// "Pe vin., 20 oct. 2017 la 17:50, Name <n@x> a scris:"), or the verb first and the date
/// after it, before a final colon ("Name <n@x> kirjoitti 20.10.2017 kello 17.50:", "Name
/// <n@x> ezt írta (időpont: 2017. okt. 20., P, 17:50):").
pub static ATTRIBUTION_BY_VERB: LazyLock<RegexSet> = LazyLock::new(|| {
    let (spaced, unspaced) = verbs();
    let marks = r"(\s*\((a|la|ла|а|ła)\))?\s*[:：]?\s*";
    RegexSet::new([
        format!(r"(?i)^.*({DATE_OR_TIME}|{ADDRESS}).*[\s>)\x22'»”,]({spaced}){marks}$"),
        format!(r"(?i)^.*({DATE_OR_TIME}|{ADDRESS}).*({unspaced}){marks}$"),
        format!(r"(?i)^.*[\s>)\x22]({spaced})\s.*{DATE_OR_TIME}.*[:：]\s*$"),
    ])
    .expect("built-in patterns compile")
});

/// A line that carries a date and a time of day, so may be the first line of an attribution
/// whose name and verb were wrapped onto the next ("pe 20. lokakuuta 2017 klo 17.50 Name
/// <n@x>" / "kirjoitti:").
pub static DATED_LINE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?-u:\b)(19|20)\d{2}(?-u:\b).*(?-u:\b)\d{1,2}[:.]\d{2}(?-u:\b)|(?-u:\b)\d{1,2}[:.]\d{2}(?-u:\b).*(?-u:\b)(19|20)\d{2}(?-u:\b)",
    )
});

/// A date and an address ending in a colon, in any language: "2016-10-24 15:36 GMT+02:00 Foo
/// <foo@bar.test>:", "23 mar 2017 21:25 \"Neil\" <n@x.test> napisał(a):", "26.06.2014, 14:41,
/// \"Alexander\" <a@x.test>:". Needs a digit, an address in brackets, quotes or parentheses
/// (or after mailto:), and the final colon.
pub static DATED_ADDRESS_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    let address = r"([<(\[]\s*(mailto:)?[^\s<>()\[\]@]+@[^\s<>()\[\]]+\s*[>)\]]|mailto:\S+@\S+)";
    re(&format!(r"^(.*\d.*{address}|.*{address}.*\d).*[:：]$"))
});

/// A header block may start with its Date line (some clients put it first; Orange's webmail
/// writes "Message du 20/10/17 17:50" without a colon).
pub static HEADER_DATE: LazyLock<Regex> = LazyLock::new(|| {
    let sent = alternation(&words(|l| l.sent));
    re(&format!(
        r"(?i){LEAD}[*_]{{0,2}}(({sent})[*_]{{0,2}}\s*[:：]\s*\S|message du\s*:?\s*\d)"
    ))
});

/// Where an attribution starts inside a line the person also typed on ("reply On Wed, Apr 4,
/// 2012 at 3:59 PM, bob@example.com wrote:"): a capitalised "On", a day name or a digit, after a
/// space or a dash.
pub static INNER_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| re(r"[\s-]On (\p{Lu}\p{Ll}+,? |\d)"));

/// A piece of a link that a client's wrapping pushed out of a quoted block ("_nonce=3dd518)",
/// " (`http://example.com/c/Yz`) >"): every word is a URL fragment, a bracket or a quote mark.
pub static LINK_FRAGMENT: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^\s*(\(?\S*(://|=|/|_)\S*\)?|[>)])(\s+(\(?\S*(://|=|/|_)\S*\)?|[>)]))*\s*$")
});

/// The first line of a closing: "Regards, Roman", "Thanks,", "Best wishes", "Cheers", and the
/// like in a few languages.
pub static CLOSING: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(regards|kind regards|best regards|warm regards|best|best wishes|all the best|thanks|thank you|many thanks|cheers|sincerely|yours|cordially|br|merci|cordialement|bien à vous|grüße|viele grüße|mit freundlichen grüßen|lg|saludos|un saludo|gracias|cordiali saluti|saluti|grazie|groeten|met vriendelijke groet|obrigado|obrigada|abraços|hälsningar|mvh|med vänliga hälsningar)(?-u:\b)[\s,.!]*(\p{L}[\p{L}.'’ -]{0,30})?\s*$",
    )
});

/// A time of day as mail headers write it ("00:15:02", "3:59 PM").
pub static TIME_OF_DAY: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u:\b)\d{1,2}:\d{2}(?-u:\b)"));

/// Words that begin an attribution line, so a wrapped one is recognised from its first line.
pub static ATTRIBUTION_OPENER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*(on|le|am|el|op|il|in data|em|no dia|den|på|w dniu|dnia|dne|pe|vào|στις|в|у|في|ב|在|\d+)(?-u:\b)",
    )
});

/// A sign-off made of a hyphen and a name ("-Abhishek Kona"), recognised only as the last line.
/// An em or en dash ("—Ryan") is left alone: typographic dashes are as often the end of the
/// person's own sentence layout as a signature, and keeping a name loses nothing.
pub static DASH_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^\s*-\s?\p{Lu}[\p{L}.'’-]*( [\p{L}.'’-]+){0,3}\s*$"));

/// "-----Original Message-----" and its translations, between dashes, underscores or "=".
pub static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    let original = alternation(&words(|l| l.original));
    re(&format!(
        r"(?i)^[\s\-_*=]*({original}|originalmeddelande|mensagem original)[\s\-_*=]*[:：]?[\s\-_*=]*$"
    ))
});

/// "---------- Forwarded message ---------" / "Begin forwarded message:" and their
/// translations: a forward the person chose to send, kept whole.
pub static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
    let forwarded = alternation(&words(|l| l.forwarded));
    re(&format!(r"(?i)^[\s\-_*=>]*({forwarded})[\s\-_*=:：]*$"))
});

/// The first line of an Outlook header block ("From: …", "*De :* …", "Lähettäjä: …").
pub static HEADER_FROM: LazyLock<Regex> = LazyLock::new(|| {
    let from = alternation(&words(|l| l.from));
    re(&format!(
        r"(?i){LEAD}[*_]{{0,2}}({from}|差出人)[*_]{{0,2}}\s*[:：][*_]{{0,2}}\s*\S"
    ))
});

/// Other lines of an Outlook header block (when it was sent, to whom, copy, subject).
pub static HEADER_OTHER: LazyLock<Regex> = LazyLock::new(|| {
    let mut labels = words(|l| l.sent);
    labels.extend(words(|l| l.to));
    labels.extend(words(|l| l.cc));
    labels.extend(words(|l| l.subject));
    labels.extend(["risposta", "date d'envoi"]);
    let labels = alternation(&longest_first(labels));
    re(&format!(
        r"(?i){LEAD}[*_]{{0,2}}({labels})[*_]{{0,2}}\s*[:：]"
    ))
});

/// A line made only of separator characters (at least eight), such as Outlook's underscore
/// rule. Asked of most lines, so a scan of the bytes, not a pattern.
pub fn is_separator(line: &str) -> bool {
    let mut rule = 0;
    for c in line.chars() {
        match c {
            '_' | '-' | '=' | '*' | '~' => rule += 1,
            c if c.is_whitespace() => {}
            _ => return false,
        }
    }
    rule >= 8
}

/// Phone and app sign-offs in every listed language: the language's opening words, then
/// within a few words a device or an app ("Envoyé de mon iPhone", "Gesendet von Outlook für
/// Android", "Wysłane z mojego Galaxy"), or the device first and the language's closing words
/// ("iPhoneから送信", "iPhone'umdan gönderildi", "iPhone에서 보냄"). A link glued to the end
/// ("…für Android<https://aka.ms/ghei36>") is taken off before matching ([`TRAILING_LINK`]).
pub static SIGN_OFF_ANY_LANGUAGE: LazyLock<AnyLanguageSignOff> =
    LazyLock::new(AnyLanguageSignOff::new);

/// [`SIGN_OFF_ANY_LANGUAGE`]'s three shapes, each asked only when it can match: the device-first
/// shape needs the line to end in one of the closing words, which is looked at first (every
/// line of a reply may be asked, and that pattern reads every word).
pub struct AnyLanguageSignOff {
    prefixed: Regex,
    suffixed: Regex,
    chinese: Regex,
    suffixes: Vec<&'static str>,
    /// The bytes a line may start with (after spaces) for `prefixed`, and end with (before
    /// full stops) for `suffixed`, in either case: most lines are refused by one lookup.
    first_bytes: ByteSet,
    last_bytes: ByteSet,
}

/// A set of bytes, for refusing a line by its first or last byte. Every non-ASCII byte is in
/// it: a letter's other case may be written with other bytes.
struct ByteSet([bool; 256]);

impl ByteSet {
    fn of(bytes: impl Iterator<Item = u8>) -> ByteSet {
        let mut set = [false; 256];
        set[0x80..].fill(true);
        for b in bytes {
            set[usize::from(b.to_ascii_lowercase())] = true;
            set[usize::from(b.to_ascii_uppercase())] = true;
        }
        ByteSet(set)
    }

    fn has(&self, b: Option<&u8>) -> bool {
        b.is_some_and(|b| self.0[usize::from(*b)])
    }
}

impl AnyLanguageSignOff {
    fn new() -> AnyLanguageSignOff {
        let [prefixed, suffixed, chinese] = sign_off_any_language().map(|p| re(&p));
        let mut suffixes = words(|l| l.sent_from_suffix);
        suffixes.extend(MORE_SENT_FROM_SUFFIX);
        let mut prefixes = words(|l| l.sent_from);
        prefixes.extend(MORE_SENT_FROM);
        AnyLanguageSignOff {
            prefixed,
            suffixed,
            chinese,
            first_bytes: ByteSet::of(prefixes.iter().filter_map(|p| p.bytes().next())),
            last_bytes: ByteSet::of(suffixes.iter().filter_map(|s| s.bytes().next_back())),
            suffixes,
        }
    }

    /// Whether `line` is a sign-off of one of these shapes.
    pub fn is_match(&self, line: &str) -> bool {
        let start = line.trim_start();
        let end = line.trim_end().trim_end_matches(['.', '!']).trim_end();
        (self.first_bytes.has(start.as_bytes().first()) && self.prefixed.is_match(line))
            || (self.last_bytes.has(end.as_bytes().last())
                && self.suffixes.iter().any(|s| ends_with_word(end, s))
                && self.suffixed.is_match(line))
            || (start.starts_with(['发', '来', '從', '从']) && self.chinese.is_match(line))
    }
}

/// Whether `text` ends with `word` (lower case), in any letter case.
fn ends_with_word(text: &str, word: &str) -> bool {
    let Some(start) = text.len().checked_sub(word.len()) else {
        return false;
    };
    if !text.is_char_boundary(start) {
        return false;
    }
    let tail = &text[start..];
    tail.eq_ignore_ascii_case(word) || (!tail.is_ascii() && tail.to_lowercase() == word)
}

/// The patterns of [`SIGN_OFF_ANY_LANGUAGE`].
fn sign_off_any_language() -> [String; 3] {
    let mut prefixes = words(|l| l.sent_from);
    prefixes.extend(MORE_SENT_FROM);
    let prefixes = alternation(&prefixes);
    let mut suffixes = words(|l| l.sent_from_suffix);
    suffixes.extend(MORE_SENT_FROM_SUFFIX);
    let suffixes = alternation(&suffixes);
    let devices = alternation(&longest_first(DEVICES.to_vec()));
    [
        format!(
            r"(?i)^\s*({prefixes})[\s:-]*([^\s,]+\s+){{0,3}}[^\s,]*({devices})\S*(\s+[^\s,]+){{0,3}}\s*[.!]?\s*$"
        ),
        format!(
            r"(?i)^\s*([^\s,]+\s+){{0,3}}[^\s,]*({devices})[^\s,]*(\s+[^\s,]+){{0,2}}\s*({suffixes})\s*[.!]?\s*$"
        ),
        // Chinese writes the device between the words: "发自我的iPhone", "从我的华为手机发送".
        r"^\s*(发自|来自|從|从)我的\s*\S{1,20}\s*$".to_owned(),
    ]
}

/// A link glued to the end of a sign-off: "<https://aka.ms/o0ukef>", "[https://…]",
/// "(https://…)".
pub static TRAILING_LINK: LazyLock<Regex> =
    LazyLock::new(|| re(r"\s*[<\[(]\s*(https?://|mailto:)[^>\])\s]*\s*[>\])]\s*$"));

/// Words of a mailing list's footer ("To unsubscribe …", "You received this message because
/// you are subscribed to the Google Groups …", a listinfo link): a block at the end with one
/// of them is the list's, not the person's.
pub static LIST_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(mailing list|listinfo|unsubscribe|you received this message because you are subscribed|googlegroups\.com|groups\.io|mailman|abbestellen|abmelden|désinscri|désabonn|darse de baja|cancelar (la )?suscripci|annullare l'iscrizione|cancellarti|afmelden|uitschrijven|avregistrer|avsluta prenumerationen|afmeld|peruuta tilaus|wypisać|odhlásit|leiratkoz|dezabon|abonelikten çık|отписаться|відписатися)",
    )
});

/// A signature delimiter: `-- ` (RFC 3676) or a bare `--`.
pub fn is_signature_delimiter(line: &str) -> bool {
    line.strip_prefix("--").is_some_and(|rest| {
        let mut rest = rest.chars();
        rest.next().is_none_or(char::is_whitespace) && rest.next().is_none()
    })
}

/// Mobile and web-client sign-offs, recognised only as the last lines of a reply. The bounded
/// repeats are kept here on purpose: a long sentence that starts "Sent from my …" is text.
pub static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| re(SIGN_OFF_PATTERN));

/// The pattern of [`SIGN_OFF`].
const SIGN_OFF_PATTERN: &str = concat!(
    r"(?i)^\s*(",
    // English
    // "Sent from my iPhone", "… my HTC M8 Android phone.  Please excuse typoze", but not
    // "Sent from my desk, is much easier then my mobile phone." (at most five words, then
    // only an apology or a link)
    r"sent from my \S+( \S+){0,4}(\s+please excuse .{0,40}|\s*<[^>\s]*>)?",
    r"|sent from (mail|mailbox|outlook|yahoo mail|samsung|gmail|windows mail|mail for windows)\b.{0,40}",
    r"|sent from \[mail\]\([^)\s]*\) for windows( \d+)?",
    r"|get \[?outlook for (ios|android).{0,40}",
    r"|sent with (sparrow|blackberry|proton ?mail|airmail)\b.{0,40}",
    r"|sent via .{0,30}(mobile|phone|iphone|ipad|android|blackberry)\b.{0,20}",
    r"|sent via (mobile|my \S.{0,30})|sent with \S.{0,30}",
    r"|from my (iphone|ipad|android|samsung|mobile|phone)\b.{0,20}",
    r"|\S+ from (my )?(mobile|phone|iphone)",
    // Parenthesised or bracketed: "(Sent from mobile device)", "<<sent by galaxy>>"
    r"|[(<]{1,2}\s*sent (from|by|with) (a |my )?\S.{0,30}[)>]{1,2}",
    // Other languages
    r"|von meinem [^,]{1,40} gesendet\.?|gesendet von meinem [^,]{1,40}",
    r"|diese nachricht wurde von meinem [^,]{1,60} gesendet\.?",
    r"|envoy[ée] (de|depuis) mon [^,]{1,40}|enviado desde mi [^,]{1,40}|enviado do meu [^,]{1,40}",
    r"|inviato da(l mio)? [^,]{1,40}|verzonden (vanaf|met) [^,]{1,40}",
    r"|skickat från min [^,]{1,40}|sendt fra min [^,]{1,40}|отправлено с [^,]{1,40}",
    r"|iphoneから送信|(从|從)我的\s*[^,]{1,20}(发送|傳送|送出)",
    r")\s*$",
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Every date format of the vocabulary, in an attribution of its language's shape, is
    /// recognised: "<date>, Name <n@x> <verb>:" and "<date> Name <n@x>:" (no verb, as Gmail
    /// writes Russian and Hebrew).
    #[test]
    fn every_language_date_makes_an_attribution() {
        for l in super::super::vocabulary::LANGUAGES {
            for date in l.dates {
                let with_verb = format!("{date}, Dr Lee <lee@clinic.example> {}:", l.wrote[0]);
                assert!(
                    ATTRIBUTION_BY_VERB.is_match(&with_verb),
                    "{}: {with_verb}",
                    l.code
                );
                let without = format!("{date} Dr Lee <lee@clinic.example>:");
                assert!(
                    DATED_ADDRESS_HEADER.is_match(&without),
                    "{}: {without}",
                    l.code
                );
                // Without the address, the date and time alone must still count.
                let bare = format!("{date}, Dr Lee {}:", l.wrote[0]);
                assert!(ATTRIBUTION_BY_VERB.is_match(&bare), "{}: {bare}", l.code);
            }
        }
    }

    #[test]
    fn platforms_are_found_where_a_word_starts() {
        for p in PLATFORMS {
            assert!(p.is_ascii(), "{p}");
            assert!(PLATFORM_INITIALS.contains(&p.as_bytes()[0]), "{p}");
            assert!(names_platform(&format!(
                "Sent with X for {}",
                p.to_uppercase()
            )));
        }
        assert!(names_platform("נשלח מ-Yahoo Mail ב-Android"));
        assert!(names_platform("Lähetetty Androidille"));
        assert!(!names_platform("Moniosa mailbox"));
        assert!(SIGN_OFF_ANY_LANGUAGE.is_match("iPhoneから送信"));
        assert!(SIGN_OFF_ANY_LANGUAGE.is_match("iPhone'umdan gönderildi."));
        assert!(!SIGN_OFF_ANY_LANGUAGE.is_match("My iPhone is broken"));
    }

    #[test]
    fn attributions() {
        for line in [
            "On Tue, 2011-03-01 at 18:02 +0530, Abhishek Kona wrote:",
            "On 11-Apr-2011, at 6:54 PM, Roman Tkachenko <romant@example.com> wrote:",
            "Le lun. 3 mars 2014 à 10:00, Jean <jean@example.fr> a écrit :",
            "Am 03.03.2014 um 10:00 schrieb Hans Müller <hans@example.de>:",
            "Hans Müller schrieb am 03.03.2014 10:00:",
            "El 3 mar 2014, a las 10:00, Ana <ana@example.es> escribió:",
            "Op 3 mrt. 2014 om 10:00 heeft Jan <jan@example.nl> het volgende geschreven:",
            "Il giorno 3 mar 2014, alle ore 10:00, Luca <luca@example.it> ha scritto:",
            "Em 3 de mar de 2014, às 10:00, João <joao@example.br> escreveu:",
            "Den 3 mars 2014 kl. 10:00 skrev Sven <sven@example.se>:",
            "2014年3月3日 10:00 Taro <taro@example.jp>:",
            "在 2014年3月3日，王 <wang@example.cn> 写道：",
            "jane@example.com wrote:",
        ] {
            assert!(ATTRIBUTION.is_match(line), "{line}");
        }
        for line in [
            "On my way to the clinic now.",
            "Once I wrote that down it was clear.",
            "Le docteur a dit que tout va bien.",
        ] {
            assert!(!ATTRIBUTION.is_match(line), "{line}");
        }
    }

    #[test]
    fn sign_offs_and_headers() {
        for line in [
            "Sent from my iPhone",
            "Get Outlook for iOS",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPad",
        ] {
            assert!(SIGN_OFF.is_match(line), "{line}");
        }
        for line in [
            "Sent via the pharmacy the new prescription.",
            "From my side the dose is fine.",
        ] {
            assert!(!SIGN_OFF.is_match(line), "{line}");
        }
        assert!(HEADER_FROM.is_match("*From:* Outlook user"));
        assert!(HEADER_FROM.is_match("De : Jean Dupont"));
        assert!(!HEADER_FROM.is_match("From my side the dose is fine."));
        assert!(HEADER_OTHER.is_match("*Sent:* 2016-01-27"));
        assert!(ORIGINAL_MESSAGE.is_match("-----Original Message-----"));
        assert!(is_separator("________________________________"));
        assert!(!is_separator("----"));
        assert!(is_signature_delimiter("-- "));
        assert!(is_signature_delimiter("--"));
        assert!(is_signature_delimiter("--\t"));
        assert!(!is_signature_delimiter("--  "));
        assert!(!is_signature_delimiter("-- Jane"));
        assert!(!is_signature_delimiter(" -- "));
        assert!(is_separator("  ========  "));
        assert!(is_separator("= = = = = = = ="));
        assert!(is_separator("~~~~****____----"));
        assert!(!is_separator("-------- x"));
        assert!(!is_separator("       "));
    }
}
