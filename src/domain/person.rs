//! The rules for what the directory may say about a person: plain checks on text, no I/O.
//! Each returns the value as it is to be stored, or says in one sentence what is wrong.

use super::text::has_hidden_characters;

/// Longest name, title or practice name kept.
pub const MAX_TEXT: usize = 200;

/// A name, title or practice name: trimmed, one line, no invisible or direction-changing
/// characters; empty means none.
pub fn text(field: &str, value: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().any(char::is_control) || has_hidden_characters(value) {
        return Err(format!(
            "{field}: expected one line of plain text (no control or invisible characters)"
        ));
    }
    if value.chars().count() > MAX_TEXT {
        return Err(format!("{field}: longer than {MAX_TEXT} characters"));
    }
    Ok(Some(value.to_owned()))
}

/// A date of birth, `YYYY-MM-DD`: a real calendar day, not after `today` (also `YYYY-MM-DD`),
/// not before 1900. Empty means none.
pub fn birth_date(value: &str, today: &str) -> Result<Option<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let wrong = || format!("date of birth: '{value}' is not a date such as 1984-03-07");
    let parts: Vec<&str> = value.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(wrong());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(wrong());
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return Err(wrong());
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err(wrong()),
    };
    if d == 0 || d > days {
        return Err(wrong());
    }
    if y < 1900 || value > today {
        return Err(format!(
            "date of birth: {value} is not a possible date of birth"
        ));
    }
    Ok(Some(value.to_owned()))
}

/// A mobile number in E.164 (`+4915112345678`); spaces, dashes, dots and brackets people
/// write between the digits are dropped. Empty means none.
pub fn mobile(value: &str) -> Result<Option<String>, String> {
    let compact: String = value
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
        .collect();
    if compact.is_empty() {
        return Ok(None);
    }
    let digits = compact.strip_prefix('+').unwrap_or("");
    let ok = digits.len() >= 7
        && digits.len() <= 15
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !ok {
        return Err(format!(
            "mobile: '{}' is not a number in international form such as +4915112345678",
            value.trim()
        ));
    }
    Ok(Some(compact))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_of_birth() {
        let today = "2026-12-02";
        assert_eq!(
            birth_date("1984-03-07", today).unwrap().as_deref(),
            Some("1984-03-07")
        );
        assert_eq!(birth_date(" ", today).unwrap(), None);
        assert_eq!(
            birth_date("2000-02-29", today).unwrap().as_deref(),
            Some("2000-02-29")
        );
        for bad in [
            "1900-02-29",
            "1984-13-01",
            "1984-04-31",
            "84-03-07",
            "1984/03/07",
            "2027-01-01",
            "1850-01-01",
            "1984-3-7",
        ] {
            assert!(birth_date(bad, today).is_err(), "{bad}");
        }
    }

    #[test]
    fn mobiles() {
        assert_eq!(
            mobile("+49 151 1234-5678").unwrap().as_deref(),
            Some("+4915112345678")
        );
        assert_eq!(mobile("").unwrap(), None);
        for bad in [
            "015112345678",
            "+0151123",
            "+49 151 abc",
            "+1234",
            "+1234567890123456",
        ] {
            assert!(mobile(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert_eq!(
            text("name", "  Jane Doe ").unwrap().as_deref(),
            Some("Jane Doe")
        );
        assert_eq!(text("name", "").unwrap(), None);
        assert!(text("name", "Jane\nDoe").is_err());
        assert!(text("name", "Jane\u{202e}eoD").is_err());
        assert!(text("name", &"x".repeat(201)).is_err());
    }
}
