//! Signed tokens: reply tokens (`reply+TOKEN@reply_domain`) and secure-link tokens.
//!
//! A token names one participant of one thread, carries the key id it was signed with (so keys
//! can rotate while tokens are in flight) and its issue time (so it expires), and ends with a
//! truncated HMAC-SHA256. It is checked entirely from the keyring, before any database read, and
//! the MAC is compared in constant time.
//!
//! Layout (35 bytes, 56 lower-case base32 characters, no padding):
//! `kind/version (1) | key id (2) | issued at, Unix seconds (4) | thread (8) | participant (8) | MAC (12)`.
//! `reply+` plus 56 characters is 62 octets, inside the 64-octet limit of a local part.

use data_encoding::BASE32_NOPAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::keyring::{KeyId, Keyring, Purpose};
use crate::domain::{ParticipantId, ThreadId};

const REPLY_V1: u8 = 0x01;
const LINK_V1: u8 = 0x02;
const PAYLOAD_LEN: usize = 1 + 2 + 4 + 8 + 8;
/// 96 bits: the minimum PRODUCT.md allows, chosen so the whole address fits in 64 octets.
const MAC_LEN: usize = 12;
const TOKEN_BYTES: usize = PAYLOAD_LEN + MAC_LEN;
/// Length of an encoded token in characters.
pub const TOKEN_CHARS: usize = TOKEN_BYTES * 8 / 5;
/// The local-part prefix of reply addresses.
pub const REPLY_PREFIX: &str = "reply+";

/// What a verified token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub key_id: KeyId,
    pub issued_at: i64,
    pub thread_id: ThreadId,
    pub participant_id: ParticipantId,
}

impl TokenClaims {
    /// When a token with these claims stops verifying under a time-to-live of `ttl_days`.
    pub fn expires_at(&self, ttl_days: u32) -> i64 {
        self.issued_at + i64::from(ttl_days) * 86_400
    }
}

/// Why a token does not verify; each cause is distinct so operators can tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a token (wrong length or alphabet)")]
    Malformed,
    #[error("token version {0} is not supported")]
    UnsupportedVersion(u8),
    #[error("token was signed with key id {0}, which the keyring does not have")]
    UnknownKey(KeyId),
    #[error("token signature does not verify")]
    BadMac,
    #[error("token expired")]
    Expired {
        claims: TokenClaims,
        expires_at: i64,
    },
}

impl TokenError {
    /// A short stable word for logs, JSON and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::UnsupportedVersion(_) => "unsupported-version",
            TokenError::UnknownKey(_) => "unknown-key",
            TokenError::BadMac => "bad-mac",
            TokenError::Expired { .. } => "expired",
        }
    }
}

/// A reply token: lets one participant answer one thread by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyToken {
    pub claims: TokenClaims,
    text: String,
}

/// A secure-link token: lets one participant open one thread's page from a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkToken {
    pub claims: TokenClaims,
    text: String,
}

macro_rules! token_kind {
    ($name:ident, $purpose:expr, $version:expr) => {
        impl $name {
            /// Signs a new token for `participant` of `thread`, issued at `now`, with the
            /// keyring's current key.
            pub fn issue(
                keyring: &Keyring,
                thread: ThreadId,
                participant: ParticipantId,
                now: i64,
            ) -> $name {
                let claims = TokenClaims {
                    key_id: keyring.current_id(),
                    issued_at: now,
                    thread_id: thread,
                    participant_id: participant,
                };
                let text = sign(keyring, $purpose, $version, &claims);
                $name { claims, text }
            }

            /// Checks a token's form, key, MAC and age; case does not matter.
            pub fn verify(
                text: &str,
                keyring: &Keyring,
                now: i64,
                ttl_days: u32,
            ) -> Result<$name, TokenError> {
                let claims = verify(text, keyring, $purpose, $version, now, ttl_days)?;
                Ok($name {
                    claims,
                    text: text.to_ascii_lowercase(),
                })
            }

            /// The token as it is written in addresses and links (lower case).
            pub fn as_str(&self) -> &str {
                &self.text
            }
        }
    };
}

token_kind!(ReplyToken, Purpose::ReplyToken, REPLY_V1);
token_kind!(LinkToken, Purpose::LinkToken, LINK_V1);

impl ReplyToken {
    /// `reply+TOKEN@domain`, the address a convenience notification's `Reply-To` carries.
    pub fn address(&self, reply_domain: &str) -> String {
        format!(
            "{REPLY_PREFIX}{}@{}",
            self.text,
            reply_domain.to_ascii_lowercase()
        )
    }
}

/// The token part of `reply+TOKEN@reply_domain`, if `address` has that shape (any case).
///
/// It says nothing about whether the token verifies.
pub fn token_in_address<'a>(address: &'a str, reply_domain: &str) -> Option<&'a str> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(reply_domain) || local.len() < REPLY_PREFIX.len() {
        return None;
    }
    let (prefix, token) = local.split_at_checked(REPLY_PREFIX.len())?;
    prefix.eq_ignore_ascii_case(REPLY_PREFIX).then_some(token)
}

/// The tag in a bounce address (`bounce+ID-TAG@reply_domain`): a MAC of the notification id, so
/// only addresses Sealpost handed out are accepted at `RCPT TO`, and a forged delivery status
/// report cannot mark a notification as bounced.
pub fn bounce_address(keyring: &Keyring, notification: i64, reply_domain: &str) -> String {
    let key = keyring
        .derived(keyring.current_id(), Purpose::ReplyToken)
        .expect("the current key is always in the keyring");
    format!(
        "bounce+{notification:016x}-{}@{}",
        bounce_tag(key, notification),
        reply_domain.to_ascii_lowercase()
    )
}

fn bounce_tag(key: &[u8; 32], notification: i64) -> String {
    let mut mac = mac_for(key, b"sealpost-bounce-v1");
    mac.update(&notification.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    BASE32_NOPAD.encode(&tag[..10]).to_ascii_lowercase()
}

/// The notification id in a bounce address whose tag verifies under any key of the keyring.
pub fn verify_bounce_address(address: &str, keyring: &Keyring, reply_domain: &str) -> Option<i64> {
    let address = address.trim().trim_start_matches('<').trim_end_matches('>');
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(reply_domain) {
        return None;
    }
    let rest = local
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bounce+"))
        .map(|_| &local[7..])?;
    let (id_hex, tag) = rest.split_once('-')?;
    let id = i64::from_str_radix(id_hex, 16).ok()?;
    let tag = BASE32_NOPAD
        .decode(tag.to_ascii_uppercase().as_bytes())
        .ok()?;
    keyring.key_ids().iter().find_map(|(kid, _)| {
        let key = keyring.derived(*kid, Purpose::ReplyToken)?;
        let mut mac = mac_for(key, b"sealpost-bounce-v1");
        mac.update(&id.to_be_bytes());
        mac.verify_truncated_left(&tag)
            .ok()
            .filter(|_| tag.len() == 10)
            .map(|_| id)
    })
}

/// The Message-ID of a notification (see [`crate::domain::mail::notification_message_id`]),
/// its tag a MAC of the id under the Message-ID purpose key.
///
/// A Message-ID travels in every reply's and forward's `References` and in every mail log on
/// the way, so it carries no credential: the tag only lets Sealpost recognise its own ids
/// without a database read, and authorises nothing (a reply linked to a thread only by it is
/// held, never filed).
pub fn notification_message_id(keyring: &Keyring, notification: i64, reply_domain: &str) -> String {
    let key = keyring
        .derived(keyring.current_id(), Purpose::MessageId)
        .expect("the current key is always in the keyring");
    crate::domain::mail::notification_message_id(
        crate::domain::NotificationId(notification),
        &message_id_tag(key, notification),
        reply_domain,
    )
}

fn message_id_tag(key: &[u8; 32], notification: i64) -> String {
    let mut mac = mac_for(key, b"sealpost-message-id-v1");
    mac.update(&notification.to_be_bytes());
    let tag = mac.finalize().into_bytes();
    BASE32_NOPAD.encode(&tag[..10]).to_ascii_lowercase()
}

/// The notification a Message-ID names, if it is one Sealpost made (its tag verifies under a
/// key of the keyring, compared in constant time) for this reply domain.
pub fn verify_notification_message_id(
    message_id: &str,
    keyring: &Keyring,
    reply_domain: &str,
) -> Option<i64> {
    let (n, tag) = crate::domain::mail::parse_notification_message_id(message_id, reply_domain)?;
    let tag = BASE32_NOPAD
        .decode(tag.to_ascii_uppercase().as_bytes())
        .ok()?;
    if tag.len() != 10 {
        return None;
    }
    keyring.key_ids().iter().find_map(|(kid, _)| {
        let key = keyring.derived(*kid, Purpose::MessageId)?;
        let mut mac = mac_for(key, b"sealpost-message-id-v1");
        mac.update(&n.0.to_be_bytes());
        mac.verify_truncated_left(&tag).ok().map(|_| n.0)
    })
}

fn mac_for(key: &[u8; 32], payload: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(payload);
    mac
}

fn sign(keyring: &Keyring, purpose: Purpose, version: u8, c: &TokenClaims) -> String {
    let key = keyring
        .derived(c.key_id, purpose)
        .expect("tokens are signed with the current key, which the keyring has");
    let mut bytes = Vec::with_capacity(TOKEN_BYTES);
    bytes.push(version);
    bytes.extend_from_slice(&c.key_id.to_be_bytes());
    bytes.extend_from_slice(&(c.issued_at.clamp(0, u32::MAX as i64) as u32).to_be_bytes());
    bytes.extend_from_slice(&c.thread_id.0.to_be_bytes());
    bytes.extend_from_slice(&c.participant_id.0.to_be_bytes());
    let tag = mac_for(key, &bytes).finalize().into_bytes();
    bytes.extend_from_slice(&tag[..MAC_LEN]);
    BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

fn verify(
    text: &str,
    keyring: &Keyring,
    purpose: Purpose,
    version: u8,
    now: i64,
    ttl_days: u32,
) -> Result<TokenClaims, TokenError> {
    if text.len() != TOKEN_CHARS || !text.is_ascii() {
        return Err(TokenError::Malformed);
    }
    let bytes = BASE32_NOPAD
        .decode(text.to_ascii_uppercase().as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() != TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let (payload, tag) = bytes.split_at(PAYLOAD_LEN);
    if payload[0] != version {
        return Err(TokenError::UnsupportedVersion(payload[0]));
    }
    let key_id = u16::from_be_bytes([payload[1], payload[2]]);
    let key = keyring
        .derived(key_id, purpose)
        .ok_or(TokenError::UnknownKey(key_id))?;
    mac_for(key, payload)
        .verify_truncated_left(tag)
        .map_err(|_| TokenError::BadMac)?;
    let field =
        |r: std::ops::Range<usize>| -> [u8; 8] { payload[r].try_into().expect("fixed layout") };
    let claims = TokenClaims {
        key_id,
        issued_at: i64::from(u32::from_be_bytes(
            payload[3..7].try_into().expect("fixed layout"),
        )),
        thread_id: ThreadId(i64::from_be_bytes(field(7..15))),
        participant_id: ParticipantId(i64::from_be_bytes(field(15..23))),
    };
    let expires_at = claims.expires_at(ttl_days);
    if now >= expires_at {
        return Err(TokenError::Expired { claims, expires_at });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_795_000_000;

    fn issue(ring: &Keyring) -> ReplyToken {
        ReplyToken::issue(ring, ThreadId::random(), ParticipantId::random(), NOW)
    }

    #[test]
    fn round_trip_and_address_length() {
        let ring = Keyring::generate();
        let t = issue(&ring);
        assert_eq!(t.as_str().len(), TOKEN_CHARS);
        assert!(
            t.as_str()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let back = ReplyToken::verify(t.as_str(), &ring, NOW + 10, 30).unwrap();
        assert_eq!(back.claims, t.claims);
        let addr = t.address("reply.example.test");
        let local = addr.split('@').next().unwrap();
        assert!(local.len() <= 64, "{}", local.len());
        assert_eq!(
            token_in_address(&addr, "REPLY.example.test"),
            Some(t.as_str())
        );
    }

    #[test]
    fn case_folded_tokens_verify() {
        let ring = Keyring::generate();
        let t = issue(&ring);
        let upper = t.as_str().to_ascii_uppercase();
        assert_eq!(
            ReplyToken::verify(&upper, &ring, NOW, 30).unwrap().claims,
            t.claims
        );
        let addr = t.address("r.test").to_ascii_uppercase();
        let found = token_in_address(&addr, "r.test").unwrap();
        assert!(ReplyToken::verify(found, &ring, NOW, 30).is_ok());
    }

    #[test]
    fn expiry() {
        let ring = Keyring::generate();
        let t = issue(&ring);
        let ttl = 30;
        let end = NOW + 30 * 86_400;
        assert!(ReplyToken::verify(t.as_str(), &ring, end - 1, ttl).is_ok());
        match ReplyToken::verify(t.as_str(), &ring, end, ttl) {
            Err(TokenError::Expired { claims, expires_at }) => {
                assert_eq!(claims, t.claims);
                assert_eq!(expires_at, end);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rotation_keeps_old_tokens_and_unknown_keys_are_distinct() {
        let mut ring = Keyring::generate();
        let old = issue(&ring);
        ring.rotate();
        let new = issue(&ring);
        assert_eq!(new.claims.key_id, 2);
        assert!(ReplyToken::verify(old.as_str(), &ring, NOW, 30).is_ok());
        assert!(ReplyToken::verify(new.as_str(), &ring, NOW, 30).is_ok());
        let fresh = Keyring::generate();
        assert_eq!(
            ReplyToken::verify(new.as_str(), &fresh, NOW, 30),
            Err(TokenError::UnknownKey(2))
        );
        assert_eq!(
            ReplyToken::verify(old.as_str(), &fresh, NOW, 30),
            Err(TokenError::BadMac)
        );
    }

    #[test]
    fn purposes_do_not_cross() {
        let ring = Keyring::generate();
        let link = LinkToken::issue(&ring, ThreadId::random(), ParticipantId::random(), NOW);
        assert_eq!(
            ReplyToken::verify(link.as_str(), &ring, NOW, 30),
            Err(TokenError::UnsupportedVersion(LINK_V1))
        );
        assert!(LinkToken::verify(link.as_str(), &ring, NOW, 30).is_ok());
    }

    #[test]
    fn malformed_inputs() {
        let ring = Keyring::generate();
        let t = issue(&ring);
        for bad in ["", "abc", &t.as_str()[1..], &format!("{}a", t.as_str())] {
            assert_eq!(
                ReplyToken::verify(bad, &ring, NOW, 30),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
        let with_1 = format!("1{}", &t.as_str()[1..]);
        assert_eq!(
            ReplyToken::verify(&with_1, &ring, NOW, 30),
            Err(TokenError::Malformed)
        );
        assert_eq!(token_in_address("alice@r.test", "r.test"), None);
        assert_eq!(token_in_address("reply+x@other.test", "r.test"), None);
        assert_eq!(token_in_address("reply@r.test", "r.test"), None);
    }

    #[test]
    fn bounce_addresses() {
        let mut ring = Keyring::generate();
        let a = bounce_address(&ring, 0x1234, "Reply.Example.test");
        assert_eq!(
            verify_bounce_address(&a, &ring, "reply.example.test"),
            Some(0x1234)
        );
        assert_eq!(
            verify_bounce_address(&a.to_uppercase(), &ring, "reply.example.test"),
            Some(0x1234)
        );
        ring.rotate();
        assert_eq!(
            verify_bounce_address(&a, &ring, "reply.example.test"),
            Some(0x1234)
        );
        let forged = a.replace("1234-", "1235-");
        assert_eq!(
            verify_bounce_address(&forged, &ring, "reply.example.test"),
            None
        );
        assert_eq!(
            verify_bounce_address(&a, &Keyring::generate(), "reply.example.test"),
            None
        );
        assert_eq!(verify_bounce_address(&a, &ring, "other.test"), None);
        assert_eq!(
            verify_bounce_address("bounce+12-@reply.example.test", &ring, "reply.example.test"),
            None
        );
    }

    #[test]
    fn notification_message_ids_carry_no_token_and_verify() {
        let mut ring = Keyring::generate();
        let id = notification_message_id(&ring, 0x0123_4567_89ab_cdef, "Reply.Example.test");
        assert!(id.starts_with("sp2.0123456789abcdef."), "{id}");
        assert!(id.ends_with("@reply.example.test"));
        let local = id.split('@').next().unwrap();
        assert!(local.len() < 40, "{id}");
        let domain = "reply.example.test";
        assert_eq!(
            verify_notification_message_id(&id, &ring, domain),
            Some(0x0123_4567_89ab_cdef)
        );
        assert_eq!(
            verify_notification_message_id(&format!("<{}>", id.to_uppercase()), &ring, domain),
            Some(0x0123_4567_89ab_cdef)
        );
        ring.rotate();
        assert!(verify_notification_message_id(&id, &ring, domain).is_some());
        let forged = id.replacen("0123456789abcdef", "0123456789abcdee", 1);
        assert_eq!(verify_notification_message_id(&forged, &ring, domain), None);
        assert_eq!(
            verify_notification_message_id(&id, &Keyring::generate(), domain),
            None
        );
        assert_eq!(
            verify_notification_message_id(&id, &ring, "other.test"),
            None
        );
        assert_eq!(
            verify_notification_message_id("sp2.x@reply.example.test", &ring, domain),
            None
        );
        // The tag is not a reply token, and a reply token is not a tag.
        let tag = id
            .split('.')
            .nth(2)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_owned();
        assert!(ReplyToken::verify(&tag, &ring, NOW, 30).is_err());
        use crate::domain::NotificationId;
        use crate::domain::mail::legacy_notification_of;
        assert_eq!(
            legacy_notification_of("<sp.n.0000000000000abc@r.test>"),
            Some(NotificationId(0xabc))
        );
        assert_eq!(
            legacy_notification_of(&format!("sp.{}.0000000000000abc@r.test", "a".repeat(56))),
            Some(NotificationId(0xabc))
        );
        assert_eq!(legacy_notification_of(&id), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any change to any character of a genuine token makes it fail, except changes of case.
        #[test]
        fn mutated_tokens_never_verify(pos in 0usize..TOKEN_CHARS, ch in proptest::char::range('0', 'z')) {
            let ring = Keyring::generate();
            let t = issue(&ring);
            let mut chars: Vec<char> = t.as_str().chars().collect();
            prop_assume!(!chars[pos].eq_ignore_ascii_case(&ch));
            chars[pos] = ch;
            let mutated: String = chars.into_iter().collect();
            prop_assert!(ReplyToken::verify(&mutated, &ring, NOW, 30).is_err());
        }

        /// Flipping any bit of the decoded token (payload or MAC), re-encoded, never verifies.
        #[test]
        fn flipped_bits_never_verify(bit in 0usize..TOKEN_BYTES * 8) {
            let ring = Keyring::generate();
            let t = issue(&ring);
            let mut bytes = BASE32_NOPAD.decode(t.as_str().to_ascii_uppercase().as_bytes()).unwrap();
            bytes[bit / 8] ^= 1 << (bit % 8);
            let mutated = BASE32_NOPAD.encode(&bytes).to_ascii_lowercase();
            prop_assert!(ReplyToken::verify(&mutated, &ring, NOW, 30).is_err());
        }
    }
}
