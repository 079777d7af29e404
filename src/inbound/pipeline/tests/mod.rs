//! The pipeline against a real SQLite store: what is held and why, release and rejection,
//! removal racing a reply, delivery reports that prove nothing, and what raw copies are kept.

use std::sync::Arc;

use tokio::sync::Notify;

use super::*;
use crate::crypto::ReplyToken;
use crate::crypto::token::{bounce_address, notification_message_id};
use crate::domain::{Address, AuthPolicy, DeliveryStatus, HeldStatus, Mode};
use crate::store::testing::{self, TestStore};

/// Bytes that make [`Parsed::read`] panic in test builds.
pub(super) const PANIC_TRIGGER: &[u8] = b"X-Test-Provoke-Panic: yes";

const DOMAIN: &str = "reply.example.test";

/// The practice's relay, whose `Authentication-Results` the pipeline believes.
const RELAY: &str = "mx.practice.test";

/// What the relay writes for a message from Jane that authenticated.
const PASSED: &str = "Authentication-Results: mx.practice.test; spf=pass \
    smtp.mailfrom=jane@example.test; dkim=pass header.d=example.test; dmarc=pass \
    header.from=example.test\r\n";

/// A checker that requires DMARC and believes only [`RELAY`]; these tests give no SMTP peer,
/// so every verdict comes from the relay's header (no DNS).
fn relay_checker() -> Arc<Checker> {
    let auth = crate::config::Auth {
        policy: AuthPolicy::RequireDmarcPass,
        dns_servers: vec!["127.0.0.1:9".parse().unwrap()],
        dns_timeout_secs: 1,
        trusted_authserv_ids: vec![RELAY.into()],
        trusted_relays: Vec::new(),
    };
    Arc::new(Checker::new(&auth, "mx.example.test").unwrap())
}

struct World {
    fixture: TestStore,
    pipeline: Pipeline,
    thread: ThreadId,
    jane: ParticipantId,
    /// Jane's reply address.
    reply_to: String,
    /// The Message-ID of Jane's notification, as the worker fixes it.
    notification_id: String,
    notification: NotificationId,
}

async fn world() -> World {
    let fixture = testing::open().await;
    let store = fixture.store.clone();
    let posted = testing::clinic_thread(&store, "Your results are in.").await;
    let jane = testing::jane(&store, posted.thread_id).await;
    let notification = posted.notifications[0];
    let ring = fixture.keyring.clone();
    let notification_id = notification_message_id(&ring, notification.0, DOMAIN);
    store
        .fix_message_ids(&[(notification, notification_id.clone())])
        .await
        .unwrap();
    let token = ReplyToken::issue(
        &ring,
        posted.thread_id,
        jane,
        crate::clock::Clock::system().now(),
    );
    let pipeline = Pipeline::new(
        store.clone(),
        DOMAIN,
        "mx.example.test",
        30,
        Arc::new(Notify::new()),
        relay_checker(),
    );
    World {
        pipeline,
        thread: posted.thread_id,
        jane,
        reply_to: token.address(DOMAIN),
        notification_id,
        notification,
        fixture,
    }
}

fn envelope(from: &str, to: &[&str]) -> Envelope {
    Envelope {
        mail_from: (!from.is_empty()).then(|| from.to_owned()),
        null_sender: from.is_empty(),
        rcpt_to: to.iter().map(|t| t.to_string()).collect(),
        verified: Vec::new(),
        door: Via::Smtp,
        imap: None,
        peer: None,
    }
}

/// A reply from Jane that the relay says authenticated.
fn message(extra_headers: &str, to: &str, id: &str, body: &str) -> Vec<u8> {
    unauthenticated(&format!("{PASSED}{extra_headers}"), to, id, body)
}

/// The same without the relay's results.
fn unauthenticated(extra_headers: &str, to: &str, id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: jane@example.test\r\nTo: {to}\r\nMessage-ID: <{id}>\r\nSubject: Re: S\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

async fn bodies(w: &World) -> Vec<String> {
    let view = w.fixture.store.thread(w.thread).await.unwrap();
    view.messages.into_iter().map(|m| m.body).collect()
}

mod authentication;
mod failures;
mod invariant;
mod reports;
