//! Keys, sealed envelopes and signed tokens.
//!
//! One master key (per key id) lives in the keyring file; every purpose gets its own key derived
//! from it with HKDF, so a reply-token key can never open a message and an at-rest key can never
//! sign a token.

pub mod keyring;
pub mod passcode;
pub mod seal;
pub mod token;
pub mod web_code;
pub mod webhook;

pub use keyring::{KeyError, KeyId, Keyring, Purpose};
pub use seal::{Binding, DataKey, SealError, WrappedKey};
pub use token::{LinkToken, ReplyToken, TokenClaims, TokenError};
pub use webhook::WebhookSecret;

/// Fills a buffer from the operating system's random generator.
///
/// There is no sensible way to continue without randomness (no key, no nonce, no id could be
/// made safely), so failure aborts the operation with a panic rather than an error value.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random generator is unavailable");
    b
}

/// Whether two byte strings are equal, in time that depends only on their lengths (digests of
/// secrets: API keys). Lengths are not secret here.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
}

#[cfg(test)]
mod eq_tests {
    #[test]
    fn constant_time_eq() {
        assert!(super::constant_time_eq(b"abc", b"abc"));
        assert!(!super::constant_time_eq(b"abc", b"abd"));
        assert!(!super::constant_time_eq(b"abc", b"ab"));
        assert!(super::constant_time_eq(b"", b""));
    }
}
