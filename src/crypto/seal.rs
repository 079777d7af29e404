//! Sealed envelopes: AES-256-GCM under a per-thread data key.
//!
//! Each thread has its own random data key, stored only wrapped by the keyring's at-rest key.
//! Rotating the master key re-wraps these small keys instead of re-encrypting every message,
//! and destroying one thread's wrapped key makes its content unrecoverable (crypto-shredding)
//! while the metadata stays for audit.
//!
//! Every ciphertext is bound to the row it belongs to through the additional authenticated data
//! (a [`Binding`]), so a ciphertext copied into another row, or another thread, fails to open.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use super::keyring::{KeyId, Keyring, Purpose};
use super::random_bytes;
use crate::domain::{MessageId, NotificationId, ParticipantId, ThreadId};

/// Envelope format version, the first byte of every sealed value.
const ENVELOPE_V1: u8 = 1;
const NONCE_LEN: usize = 12;

/// Why a sealed value could not be opened. Deliberately unspecific: a wrong key, a wrong row
/// and a flipped bit look the same to an attacker and to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value is truncated or of an unknown format")]
    Format,
    #[error("sealed value failed authentication (wrong key, wrong row, or tampered)")]
    Authentication,
    #[error("the keyring has no key with id {0}")]
    UnknownKey(KeyId),
}

/// The row a ciphertext belongs to; it becomes the additional authenticated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// A thread's wrapped data key.
    ThreadKey(ThreadId),
    /// A thread's subject.
    ThreadSubject(ThreadId),
    /// A message body.
    MessageBody(ThreadId, MessageId),
    /// The raw bytes of an inbound email, kept for audit.
    InboundRaw(ThreadId, i64),
    /// A composed notification kept for re-delivery.
    Notification(ThreadId, NotificationId),
    /// A participant's display name (names are personal data, like content).
    ParticipantName(ThreadId, ParticipantId),
    /// The data key of one held message (held mail may belong to no thread).
    HeldKey(i64),
    /// The raw bytes of a held message.
    HeldRaw(i64),
    /// The envelope (sender, recipients) a held message came with.
    HeldEnvelope(i64),
    /// The data key of one person in the directory.
    PersonKey(i64),
    /// The data key of a remembered API answer, and the answer (by API key).
    IdempotentKey(i64),
    IdempotentAnswer(i64),
    /// A field of a person's directory entry that is personal data: `name`, `birth_date`,
    /// `mobile`.
    PersonField(i64, &'static str),
    /// The signing secret of one webhook subscription.
    WebhookSecret(i64),
}

impl Binding {
    fn aad(&self) -> Vec<u8> {
        match self {
            Binding::ThreadKey(t) => format!("sealpost/v1/thread-key/{t}"),
            Binding::ThreadSubject(t) => format!("sealpost/v1/thread-subject/{t}"),
            Binding::MessageBody(t, m) => format!("sealpost/v1/message-body/{t}/{m}"),
            Binding::InboundRaw(t, i) => format!("sealpost/v1/inbound-raw/{t}/{i:016x}"),
            Binding::Notification(t, n) => format!("sealpost/v1/notification/{t}/{n}"),
            Binding::ParticipantName(t, p) => format!("sealpost/v1/participant-name/{t}/{p}"),
            Binding::HeldKey(h) => format!("sealpost/v1/held-key/{h:016x}"),
            Binding::HeldRaw(h) => format!("sealpost/v1/held-raw/{h:016x}"),
            Binding::HeldEnvelope(h) => format!("sealpost/v1/held-envelope/{h:016x}"),
            Binding::PersonKey(p) => format!("sealpost/v1/person-key/{p:016x}"),
            Binding::IdempotentKey(k) => format!("sealpost/v1/idempotent-key/{k:016x}"),
            Binding::IdempotentAnswer(k) => format!("sealpost/v1/idempotent-answer/{k:016x}"),
            Binding::PersonField(p, f) => format!("sealpost/v1/person-{f}/{p:016x}"),
            Binding::WebhookSecret(w) => format!("sealpost/v1/webhook-secret/{w:016x}"),
        }
        .into_bytes()
    }
}

/// A thread's 256-bit data key, zeroed when dropped.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A data key as stored: encrypted under the at-rest key of master key `key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub key_id: KeyId,
    pub sealed: Vec<u8>,
}

impl DataKey {
    /// A fresh random data key for a new thread.
    pub fn generate() -> DataKey {
        DataKey(Zeroizing::new(random_bytes()))
    }

    /// Encrypts `plaintext` for the row `binding`.
    pub fn seal(&self, binding: Binding, plaintext: &[u8]) -> Vec<u8> {
        seal_with(&self.0, binding, plaintext)
    }

    /// Decrypts a value sealed for the row `binding`.
    pub fn open(&self, binding: Binding, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        open_with(&self.0, binding, sealed)
    }

    /// Wraps this key under the keyring's current at-rest key, bound to its thread.
    pub fn wrap(&self, keyring: &Keyring, thread: ThreadId) -> WrappedKey {
        self.wrap_as(keyring, Binding::ThreadKey(thread))
    }

    /// Unwraps a thread's data key.
    pub fn unwrap(
        keyring: &Keyring,
        thread: ThreadId,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, SealError> {
        DataKey::unwrap_as(keyring, Binding::ThreadKey(thread), wrapped)
    }

    /// Wraps the key of held message `held` (see [`Binding::HeldKey`]).
    pub fn wrap_held(&self, keyring: &Keyring, held: i64) -> WrappedKey {
        self.wrap_as(keyring, Binding::HeldKey(held))
    }

    /// Unwraps the key of held message `held`.
    pub fn unwrap_held(
        keyring: &Keyring,
        held: i64,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, SealError> {
        DataKey::unwrap_as(keyring, Binding::HeldKey(held), wrapped)
    }

    /// Wraps the key of person `person` (see [`Binding::PersonKey`]).
    pub fn wrap_person(&self, keyring: &Keyring, person: i64) -> WrappedKey {
        self.wrap_as(keyring, Binding::PersonKey(person))
    }

    /// Unwraps the key of person `person`.
    pub fn unwrap_person(
        keyring: &Keyring,
        person: i64,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, SealError> {
        DataKey::unwrap_as(keyring, Binding::PersonKey(person), wrapped)
    }

    /// Wraps the key of an answer remembered for API key `api_key`.
    pub fn wrap_idempotent(&self, keyring: &Keyring, api_key: i64) -> WrappedKey {
        self.wrap_as(keyring, Binding::IdempotentKey(api_key))
    }

    /// Unwraps the key of an answer remembered for API key `api_key`.
    pub fn unwrap_idempotent(
        keyring: &Keyring,
        api_key: i64,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, SealError> {
        DataKey::unwrap_as(keyring, Binding::IdempotentKey(api_key), wrapped)
    }

    /// The key's bytes, for a key used directly rather than to seal (a webhook's HMAC key).
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn wrap_as(&self, keyring: &Keyring, binding: Binding) -> WrappedKey {
        let key_id = keyring.current_id();
        let kek = keyring
            .derived(key_id, Purpose::AtRest)
            .expect("the current key is always in the keyring");
        WrappedKey {
            key_id,
            sealed: seal_with(kek, binding, self.0.as_slice()),
        }
    }

    pub(crate) fn unwrap_as(
        keyring: &Keyring,
        binding: Binding,
        wrapped: &WrappedKey,
    ) -> Result<DataKey, SealError> {
        let kek = keyring
            .derived(wrapped.key_id, Purpose::AtRest)
            .ok_or(SealError::UnknownKey(wrapped.key_id))?;
        let raw = Zeroizing::new(open_with(kek, binding, &wrapped.sealed)?);
        let bytes: [u8; 32] = raw.as_slice().try_into().map_err(|_| SealError::Format)?;
        Ok(DataKey(Zeroizing::new(bytes)))
    }
}

fn seal_with(key: &[u8; 32], binding: Binding, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key fits AES-256");
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
    let nonce = Nonce::from(nonce_bytes);
    let aad = binding.aad();
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .expect("AES-GCM encrypts any message below 64 GiB");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(ENVELOPE_V1);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ct);
    out
}

fn open_with(key: &[u8; 32], binding: Binding, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != ENVELOPE_V1 {
        return Err(SealError::Format);
    }
    let cipher = Aes256Gcm::new_from_slice(key).expect("a 32-byte key fits AES-256");
    let nonce_bytes: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN]
        .try_into()
        .map_err(|_| SealError::Format)?;
    let aad = binding.aad();
    cipher
        .decrypt(
            &Nonce::from(nonce_bytes),
            Payload {
                msg: &sealed[1 + NONCE_LEN..],
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Authentication)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (ThreadId, MessageId) {
        (ThreadId::random(), MessageId::random())
    }

    #[test]
    fn round_trip() {
        let key = DataKey::generate();
        let (t, m) = ids();
        let sealed = key.seal(Binding::MessageBody(t, m), "Grüße, Dr. Lee".as_bytes());
        assert!(!sealed.windows(5).any(|w| w == b"Gr\xc3\xbc\xc3"));
        let opened = key.open(Binding::MessageBody(t, m), &sealed).unwrap();
        assert_eq!(opened, "Grüße, Dr. Lee".as_bytes());
    }

    #[test]
    fn same_plaintext_seals_differently() {
        let key = DataKey::generate();
        let (t, m) = ids();
        let a = key.seal(Binding::MessageBody(t, m), b"same");
        let b = key.seal(Binding::MessageBody(t, m), b"same");
        assert_ne!(a, b);
    }

    #[test]
    fn every_flipped_bit_fails() {
        let key = DataKey::generate();
        let (t, m) = ids();
        let sealed = key.seal(Binding::MessageBody(t, m), b"appointment at 10");
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                key.open(Binding::MessageBody(t, m), &bad).is_err(),
                "bit {i}"
            );
        }
    }

    #[test]
    fn wrong_row_or_key_fails() {
        let key = DataKey::generate();
        let (t, m) = ids();
        let sealed = key.seal(Binding::MessageBody(t, m), b"x");
        assert_eq!(
            key.open(Binding::MessageBody(t, MessageId::random()), &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(
            key.open(Binding::ThreadSubject(t), &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(
            DataKey::generate().open(Binding::MessageBody(t, m), &sealed),
            Err(SealError::Authentication)
        );
        assert_eq!(
            key.open(Binding::MessageBody(t, m), &sealed[..20]),
            Err(SealError::Format)
        );
    }

    #[test]
    fn wrap_and_unwrap_across_rotation() {
        let mut ring = Keyring::generate();
        let t = ThreadId::random();
        let key = DataKey::generate();
        let wrapped = key.wrap(&ring, t);
        assert_eq!(wrapped.key_id, 1);
        ring.rotate();
        let back = DataKey::unwrap(&ring, t, &wrapped).unwrap();
        assert_eq!(back.0.as_slice(), key.0.as_slice());
        assert_eq!(key.wrap(&ring, t).key_id, 2);
        // bound to its thread
        assert_eq!(
            DataKey::unwrap(&ring, ThreadId::random(), &wrapped).unwrap_err(),
            SealError::Authentication
        );
        // a keyring without that key
        assert_eq!(
            DataKey::unwrap(&Keyring::generate(), t, &wrapped).unwrap_err(),
            SealError::Authentication
        );
        let unknown = WrappedKey {
            key_id: 9,
            sealed: wrapped.sealed.clone(),
        };
        assert_eq!(
            DataKey::unwrap(&ring, t, &unknown).unwrap_err(),
            SealError::UnknownKey(9)
        );
    }
}
