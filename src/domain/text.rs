//! Characters that make text lie about itself: invisible format characters and bidirectional
//! controls. In an address or a display name they let two different things look the same
//! (`jane\u{200b}@example.net`), or make a name read backwards in a mail client's list.

/// Whether `c` is an invisible format character (Unicode general category Cf: zero-width
/// spaces and joiners, soft hyphen, word joiners, the byte-order mark, tags, …) or one of the
/// bidirectional controls (embeddings, overrides, isolates and marks).
pub fn is_format_or_bidi(c: char) -> bool {
    matches!(
        c as u32,
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Whether `text` holds a control character, a format character or a bidirectional control.
pub fn has_hidden_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() || is_format_or_bidi(c))
}

/// The longest subject a conversation may have.
pub const SUBJECT_MAX: usize = 200;

/// One line of text a person typed for a field that Sealpost shows and puts in headers (a
/// subject, a name): trimmed, not empty, at most `max` characters, and no control, invisible
/// or direction-changing character (which would let it look like something it is not).
pub fn one_line(field: &str, value: &str, max: usize) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(format!("{field}: expected some text"));
    }
    if has_hidden_characters(value) {
        return Err(format!(
            "{field}: expected one line of plain text (no control, invisible or text-direction \
             characters)"
        ));
    }
    if value.chars().count() > max {
        return Err(format!("{field}: longer than {max} characters"));
    }
    Ok(value.to_owned())
}

/// What heads the lines Sealpost adds to a message from the choices on a form (who should
/// answer, how): a line a person cannot type into their own text, so what Sealpost added is
/// always told apart from what they wrote.
pub const ADDED_BY_SEALPOST: &str = "── Added by Sealpost from the choices on the form ──";

/// Whether typed text holds the line that heads what Sealpost adds.
pub fn imitates_added_lines(text: &str) -> bool {
    text.lines().any(|l| l.trim() == ADDED_BY_SEALPOST.trim()) || text.contains("Added by Sealpost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_bidi_characters() {
        for c in [
            '\u{200b}',
            '\u{200d}',
            '\u{202e}',
            '\u{2066}',
            '\u{feff}',
            '\u{ad}',
            '\u{e0041}',
        ] {
            assert!(is_format_or_bidi(c), "{:04x}", c as u32);
        }
        for c in ['a', 'é', 'ß', '東', ' ', '\u{a0}', 'K', '\u{212a}'] {
            assert!(!is_format_or_bidi(c), "{:04x}", c as u32);
        }
        assert!(has_hidden_characters("Dr\u{202e}eeL"));
        assert!(has_hidden_characters("line\nbreak"));
        assert!(!has_hidden_characters("Dr Lee-Müller"));
    }

    #[test]
    fn one_line_of_plain_text() {
        assert_eq!(
            one_line("subject", "  Lab results ", 200).unwrap(),
            "Lab results"
        );
        assert!(one_line("subject", "", 200).is_err());
        assert!(one_line("subject", "Lab\u{202e}stluser", 200).is_err());
        assert!(one_line("subject", "Lab\nresults", 200).is_err());
        assert!(one_line("subject", &"x".repeat(201), 200).is_err());
        assert!(one_line("subject", &"é".repeat(200), 200).is_ok());
    }
}
