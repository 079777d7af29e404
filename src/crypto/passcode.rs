//! Passcodes staff give recipients for the web view (`web.verify = "passcode"`): kept only as
//! Argon2id hashes (PHC strings, each with its own salt), checked with the library's verifier.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Shortest passcode accepted.
pub const MIN_LEN: usize = 6;
/// Longest (hashing a long input costs time; nobody types more).
pub const MAX_LEN: usize = 128;

/// Why a passcode is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasscodeError {
    #[error("a passcode has {MIN_LEN} to {MAX_LEN} characters, without line breaks")]
    Shape,
    #[error("cannot hash the passcode: {0}")]
    Hash(String),
}

/// The Argon2id hash of `passcode` to store.
pub fn hash(passcode: &str) -> Result<String, PasscodeError> {
    let n = passcode.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) || passcode.chars().any(char::is_control) {
        return Err(PasscodeError::Shape);
    }
    Argon2::default()
        .hash_password(passcode.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasscodeError::Hash(e.to_string()))
}

/// Whether `given` is the passcode `stored` was made from. A stored value that does not parse
/// matches nothing.
pub fn matches(given: &str, stored: &str) -> bool {
    if given.len() > MAX_LEN * 4 {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    Argon2::default()
        .verify_password(given.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each has its own salt");
        assert!(matches("correct horse", &a));
        assert!(!matches("correct horsf", &a));
        assert!(!matches("correct horse", "not a hash"));
        assert_eq!(hash("short"), Err(PasscodeError::Shape));
        assert_eq!(hash("line\nbreak"), Err(PasscodeError::Shape));
    }
}
