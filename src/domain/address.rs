//! Email addresses as Sealpost compares them.
//!
//! A participant is matched by address when a reply comes in, and mail systems disagree about
//! case (some fold the local part, some keep it). Sealpost compares local parts with ASCII
//! case folded — what every mainstream provider does — and nothing more: Unicode lower-casing
//! would make different mailboxes equal (U+212A KELVIN SIGN folds to "k"). Domains are stored
//! as IDNA A-labels (`xn--…`), the one form DNS knows them by. Invisible format characters
//! and bidirectional controls are refused: they make one address look like another.

use std::fmt;

/// A normalised `local@domain` address (no display name, no angle brackets, lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(String);

/// Why a text is not an address Sealpost accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("an address needs exactly one '@' with text on both sides")]
    Shape,
    #[error("an address may not contain spaces, control characters, or any of <>()[],;:\"\\")]
    Character,
    #[error("an address may be at most 254 octets long")]
    TooLong,
    #[error("an address may not contain invisible or text-direction characters")]
    Hidden,
    #[error("the domain is not a valid domain name")]
    Domain,
}

impl Address {
    /// Parses `local@domain`, optionally inside angle brackets, and normalises it.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let t = text.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|s| s.strip_suffix('>'))
            .unwrap_or(t);
        if t.len() > 254 {
            return Err(AddressError::TooLong);
        }
        let (local, domain) = t.rsplit_once('@').ok_or(AddressError::Shape)?;
        if local.is_empty() || domain.is_empty() || local.contains('@') {
            return Err(AddressError::Shape);
        }
        if t.chars().any(crate::domain::text::is_format_or_bidi) {
            return Err(AddressError::Hidden);
        }
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c);
        if t.chars().any(bad) {
            return Err(AddressError::Character);
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(AddressError::Shape);
        }
        let domain = if domain.is_ascii() {
            domain.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii_strict(domain).map_err(|_| AddressError::Domain)?
        };
        let address = format!("{}@{domain}", local.to_ascii_lowercase());
        if address.len() > 254 {
            return Err(AddressError::TooLong);
        }
        Ok(Address(address))
    }

    /// The normalised text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or("")
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An address with an optional display name, as in a `From:` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Address,
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "\"{n}\" <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

impl serde::Serialize for Mailbox {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl std::str::FromStr for Mailbox {
    type Err = String;
    fn from_str(v: &str) -> Result<Mailbox, String> {
        let v = v.trim();
        let (name, addr) = match v.rfind('<') {
            Some(i) if v.ends_with('>') => {
                let name = v[..i].trim().trim_matches('"').trim();
                (
                    (!name.is_empty()).then(|| name.to_owned()),
                    &v[i + 1..v.len() - 1],
                )
            }
            _ => (None, v),
        };
        if name
            .as_deref()
            .is_some_and(crate::domain::text::has_hidden_characters)
        {
            return Err(
                "the display name may not contain control, invisible or text-direction characters"
                    .into(),
            );
        }
        let address = Address::parse(addr).map_err(|e| format!("'{v}' is not a mailbox: {e}"))?;
        Ok(Mailbox { name, address })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_brackets() {
        let a = Address::parse(" <Alice.Example@Mail.Example.TEST> ").unwrap();
        assert_eq!(a.as_str(), "alice.example@mail.example.test");
        assert_eq!(a.domain(), "mail.example.test");
        assert_eq!(a.local_part(), "alice.example");
    }

    /// Regression: addresses were folded with Unicode lower-casing, so U+212A KELVIN SIGN
    /// became "k" and two different mailboxes compared equal.
    #[test]
    fn only_ascii_case_is_folded() {
        let kelvin = Address::parse("\u{212a}ate@example.test").unwrap();
        let k = Address::parse("kate@example.test").unwrap();
        assert_ne!(kelvin, k);
        assert_eq!(kelvin.local_part(), "\u{212a}ate");
        assert_eq!(
            Address::parse("KATE@EXAMPLE.test").unwrap(),
            Address::parse("kate@example.test").unwrap()
        );
        // Non-ASCII letters keep their case: only the mailbox's owner knows what it means.
        assert_ne!(
            Address::parse("JÖRG@example.test").unwrap(),
            Address::parse("jörg@example.test").unwrap()
        );
        assert_eq!(
            Address::parse("JÖRG@example.test").unwrap().as_str(),
            "jÖrg@example.test"
        );
    }

    #[test]
    fn domains_become_a_labels() {
        let a = Address::parse("jane@Bücher.Example").unwrap();
        assert_eq!(a.as_str(), "jane@xn--bcher-kva.example");
        assert_eq!(a, Address::parse("JANE@xn--bcher-kva.example").unwrap());
        assert_eq!(
            Address::parse("jane@b\u{fc}cher..x"),
            Err(AddressError::Shape)
        );
        assert_eq!(
            Address::parse("jane@exa_mple.bücher"),
            Err(AddressError::Domain)
        );
    }

    /// Regression: zero-width and bidi characters passed in addresses and display names.
    #[test]
    fn invisible_and_direction_characters_are_refused() {
        for text in [
            "jane\u{200b}@example.test",
            "jane@exam\u{200d}ple.test",
            "\u{202e}enaj@example.test",
            "jane@example.test\u{2066}",
        ] {
            assert_eq!(Address::parse(text), Err(AddressError::Hidden), "{text:?}");
        }
        for text in [
            "Dr \u{202e}eeL <lee@example.test>",
            "Jane\u{200b} <jane@example.test>",
            "Jane\u{7} <jane@example.test>",
        ] {
            assert!(text.parse::<Mailbox>().is_err(), "{text:?}");
        }
        assert!(
            "Dr Lee-Müller <lee@example.test>"
                .parse::<Mailbox>()
                .is_ok()
        );
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        assert_eq!(Address::parse("alice"), Err(AddressError::Shape));
        assert_eq!(Address::parse("@x.test"), Err(AddressError::Shape));
        assert_eq!(Address::parse("a@"), Err(AddressError::Shape));
        assert_eq!(Address::parse("a@b@c"), Err(AddressError::Shape));
        assert_eq!(Address::parse("a b@c.test"), Err(AddressError::Character));
        assert_eq!(Address::parse("a@c..test"), Err(AddressError::Shape));
        assert_eq!(
            Address::parse(&format!("{}@x.test", "a".repeat(260))),
            Err(AddressError::TooLong)
        );
    }
}
