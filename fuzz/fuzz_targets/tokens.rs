//! Everything that reads an address, a token or one of our identifiers out of text a stranger
//! wrote: reply addresses and tokens, bounce addresses, notification Message-IDs, addresses and
//! mailboxes, and the log redaction of relay replies.
#![no_main]

mod contained;

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sealpost::crypto::token::{
    token_in_address, verify_bounce_address, verify_notification_message_id,
};
use sealpost::domain::mail::legacy_notification_of;
use sealpost::crypto::{Keyring, LinkToken, ReplyToken};
use sealpost::domain::{Address, Mailbox};

static KEYRING: LazyLock<Keyring> = LazyLock::new(Keyring::generate);
const DOMAIN: &str = "reply.example.test";

fuzz_target!(init: contained::install(), |data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = 1_795_000_000;
    if let Some(token) = token_in_address(text, DOMAIN) {
        let _ = ReplyToken::verify(token, &KEYRING, now, 30);
    }
    let _ = ReplyToken::verify(text, &KEYRING, now, 30);
    let _ = LinkToken::verify(text, &KEYRING, now, 30);
    let _ = verify_bounce_address(text, &KEYRING, DOMAIN);
    let _ = verify_notification_message_id(text, &KEYRING, DOMAIN);
    let _ = legacy_notification_of(text);
    let _ = Address::parse(text);
    let _ = text.parse::<Mailbox>();
    let _ = sealpost::logging::redact_addresses(text);
});
