//! A raw message as the inbound pipeline reads it before asking the database anything:
//! parsed, classified, its references read, its reply text extracted; and the same bytes as a
//! decoded body and as HTML; its header fields as sender authentication reads them (a relay's
//! Authentication-Results, and mail-auth's parse for DKIM). Nothing may panic, whatever the
//! bytes.
#![no_main]

mod contained;

use libfuzzer_sys::fuzz_target;
use sealpost::inbound::auth::results::{header_fields, trusted_verdict};
use sealpost::inbound::classify::{classify, referenced_ids};
use sealpost::inbound::reply_text;

fuzz_target!(init: contained::install(), |data: &[u8]| {
    // mail-parser's own panics are contained there (see inbound::mime); the fuzzer looks for
    // Sealpost's.
    if let Ok(m) = sealpost::inbound::mime::parse(data) {
        let _ = classify(&m, false);
        let _ = classify(&m, true);
        let _ = referenced_ids(&m);
        let _ = reply_text::body_of(&m);
    }
    let _ = reply_text::from_message(data);
    let verdict = trusted_verdict(header_fields(data), &["mx.example.test".to_owned()]);
    let _ = verdict.summary();
    let _ = mail_auth::AuthenticatedMessage::parse(data);
    let text = String::from_utf8_lossy(data);
    let _ = reply_text::from_body(&text);
    let _ = reply_text::html::to_text(&text);
});
