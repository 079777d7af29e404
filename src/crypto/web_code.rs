//! The short codes of the web view's 24-hour rule.
//!
//! A code is never stored. The database keeps a random nonce and the key id; the code is the
//! HMAC of the nonce under that key's web-code key, reduced to five digits. The SMS sender
//! computes it when it sends and the web view when it checks, so a copy of the database (or a
//! backup) shows no code, and a key rotation leaves codes in flight valid.

use hmac::{KeyInit, Mac};

use super::{KeyId, Keyring, Purpose};

/// How many digits a code has.
pub const DIGITS: usize = 5;

/// The code of `nonce` under key `key_id`; `None` when the keyring no longer has that key.
pub fn code(keyring: &Keyring, key_id: KeyId, nonce: &[u8]) -> Option<String> {
    let key = keyring.derived(key_id, Purpose::WebCode)?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(b"sealpost/v1/web-code:");
    mac.update(nonce);
    let digest = mac.finalize().into_bytes();
    // 64 bits reduced modulo 10^5: the bias (under 2^-47) is of no consequence.
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Some(format!(
        "{:0width$}",
        u64::from_be_bytes(first) % 10u64.pow(DIGITS as u32),
        width = DIGITS
    ))
}

/// Whether `given` (as typed: spaces allowed) is the code of `nonce`, compared in constant
/// time.
pub fn matches(keyring: &Keyring, key_id: KeyId, nonce: &[u8], given: &str) -> bool {
    let given: String = given.chars().filter(|c| !c.is_whitespace()).collect();
    code(keyring, key_id, nonce)
        .is_some_and(|expected| super::constant_time_eq(expected.as_bytes(), given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_five_digits_and_depend_on_the_nonce() {
        let ring = Keyring::generate();
        let id = ring.current_id();
        let a = code(&ring, id, b"nonce-a").unwrap();
        let b = code(&ring, id, b"nonce-b").unwrap();
        assert_eq!(a.len(), DIGITS);
        assert!(a.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(a, b);
        assert_eq!(code(&ring, id, b"nonce-a").unwrap(), a);
        assert!(matches(
            &ring,
            id,
            b"nonce-a",
            &format!(" {} {}", &a[..2], &a[2..])
        ));
        assert!(!matches(&ring, id, b"nonce-a", &b));
        assert!(!matches(&ring, id, b"nonce-a", ""));
        // Another keyring computes other codes.
        let other = Keyring::generate();
        assert_ne!(code(&other, other.current_id(), b"nonce-a"), Some(a));
    }
}
