//! Email addresses as Sealpost compares them.
//!
//! A participant is matched by address when a reply comes in, and mail systems disagree about
//! case (some fold the local part, some keep it). Sealpost stores and compares the address in
//! lower case, which is what every mainstream provider does in practice.

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
        let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[],;:\"\\".contains(c);
        if t.chars().any(bad) {
            return Err(AddressError::Character);
        }
        if domain.starts_with('.') || domain.ends_with('.') || domain.contains("..") {
            return Err(AddressError::Shape);
        }
        Ok(Address(t.to_lowercase()))
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
            .is_some_and(|n| n.chars().any(char::is_control))
        {
            return Err("the display name may not contain control characters".into());
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
