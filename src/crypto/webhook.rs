//! Webhook signatures as the Standard Webhooks specification has them, so a portal can check
//! them with any of its libraries: HMAC-SHA256 over `<webhook-id>.<webhook-timestamp>.<body>`
//! with the subscription's own secret, sent as `v1,<base64>`; the secret is shown once as
//! `whsec_<base64>`. The secret is kept wrapped under the keyring (never in clear in the
//! database): a copy of the database alone cannot forge deliveries.

use hmac::{KeyInit, Mac};

use super::{Binding, DataKey, Keyring, SealError, WrappedKey};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The prefix of a secret as shown, as the specification writes it.
pub const SECRET_PREFIX: &str = "whsec_";

/// One subscription's signing secret (256 random bits), zeroed when dropped.
#[derive(Clone, Debug)]
pub struct WebhookSecret(DataKey);

impl WebhookSecret {
    /// A fresh secret.
    pub fn generate() -> WebhookSecret {
        WebhookSecret(DataKey::generate())
    }

    /// The secret wrapped for the database, bound to subscription `id`.
    pub fn wrap(&self, keyring: &Keyring, id: i64) -> WrappedKey {
        self.0.wrap_as(keyring, Binding::WebhookSecret(id))
    }

    /// The secret of subscription `id` from its wrapped form.
    pub fn unwrap(
        keyring: &Keyring,
        id: i64,
        wrapped: &WrappedKey,
    ) -> Result<WebhookSecret, SealError> {
        DataKey::unwrap_as(keyring, Binding::WebhookSecret(id), wrapped).map(WebhookSecret)
    }

    /// `whsec_<base64>`: what the portal configures to check signatures.
    pub fn to_text(&self) -> String {
        format!(
            "{SECRET_PREFIX}{}",
            data_encoding::BASE64.encode(self.0.bytes())
        )
    }

    /// The `webhook-signature` header value for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        signature(self.0.bytes(), id, timestamp, body)
    }
}

/// The key bytes of a secret written as `whsec_<base64>` (what a gateway of the practice's
/// shares with Sealpost); `None` for anything else.
pub fn parse_secret(text: &str) -> Option<Vec<u8>> {
    let key = data_encoding::BASE64
        .decode(text.trim().strip_prefix(SECRET_PREFIX)?.as_bytes())
        .ok()?;
    (key.len() >= 16).then_some(key)
}

/// `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        data_encoding::BASE64.encode(&mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (standard-webhooks, `spec/standard-webhooks.md`):
    /// secret, id, timestamp and body give this signature.
    #[test]
    fn signs_like_the_specification() {
        let text = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let key = data_encoding::BASE64.decode(text.as_bytes()).unwrap();
        assert_eq!(
            signature(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                b"{\"test\": 2432232314}"
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_wrapped_secret_opens_only_for_its_subscription() {
        let keyring = Keyring::generate();
        let secret = WebhookSecret::generate();
        let wrapped = secret.wrap(&keyring, 7);
        let back = WebhookSecret::unwrap(&keyring, 7, &wrapped).unwrap();
        assert_eq!(back.to_text(), secret.to_text());
        assert!(WebhookSecret::unwrap(&keyring, 8, &wrapped).is_err());
        assert!(secret.to_text().starts_with(SECRET_PREFIX));
        assert_eq!(secret.sign("msg_1", 5, b"{}"), back.sign("msg_1", 5, b"{}"));
        assert_ne!(
            secret.sign("msg_1", 5, b"{}"),
            secret.sign("msg_1", 6, b"{}")
        );
    }
}
