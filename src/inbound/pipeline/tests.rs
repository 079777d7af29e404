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

/// A panic while handling one message holds that message, sealed and whole; a release that
/// panics again leaves it held; a rejection destroys the copy.
#[tokio::test]
async fn a_panic_holds_the_message_and_nothing_else() {
    let w = world().await;
    let raw = message(
        &format!("{}\r\n", String::from_utf8_lossy(PANIC_TRIGGER)),
        &w.reply_to,
        "boom@x",
        "This triggers a defect.",
    );
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let outcome = w.pipeline.process(&env, raw.clone()).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::ProcessingFailed);
    let held = w.fixture.store.held(id).await.unwrap();
    assert_eq!(held.raw, raw, "the whole message is kept");
    assert_eq!(held.envelope.rcpt_to, vec![w.reply_to.clone()]);
    assert_eq!(held.summary.thread, None);

    // The pipeline carries on with the next message.
    let ok = message("", &w.reply_to, "fine@x", "All good, thanks.");
    let outcome = w.pipeline.process(&env, ok).await.unwrap();
    assert!(matches!(outcome, Outcome::Filed { .. }), "{outcome:?}");

    let again = w.pipeline.release(id, &env, raw, "staff", None).await;
    assert!(
        matches!(again, Err(ReleaseError::StillFailing)),
        "{again:?}"
    );
    assert_eq!(
        w.fixture.store.held(id).await.unwrap().summary.status,
        HeldStatus::Held
    );
    w.fixture.store.reject_held(id, "staff").await.unwrap();
    let rejected = w.fixture.store.held(id).await.unwrap();
    assert_eq!(rejected.summary.status, HeldStatus::Rejected);
    assert_eq!(rejected.summary.decided_by.as_deref(), Some("staff"));
    assert!(rejected.raw.is_empty(), "the copy is destroyed");
    assert!(matches!(
        w.fixture.store.reject_held(id, "staff").await,
        Err(StoreError::HeldDecided(_))
    ));
}

/// Regression: a Message-ID of one of our notifications in References was enough to file a
/// reply into its thread. Now it is held unless its sender authenticates, and a person's
/// release files it.
#[tokio::test]
async fn a_reply_linked_only_by_a_message_id_is_held_until_released() {
    let w = world().await;
    let raw = unauthenticated(
        &format!(
            "In-Reply-To: <{0}>\r\nReferences: <{0}>\r\n",
            w.notification_id
        ),
        "postmaster@reply.example.test",
        "refs-only@x",
        "Written without a token.",
    );
    let env = envelope("jane@example.test", &["postmaster@reply.example.test"]);
    let outcome = w.pipeline.process(&env, raw.clone()).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::LinkedByReferences);
    assert_eq!(bodies(&w).await.len(), 1, "nothing filed");
    let held = w.fixture.store.held(id).await.unwrap();
    assert_eq!(held.summary.thread, Some(w.thread));
    assert_eq!(held.summary.participant, Some(w.jane));

    // A Message-ID that only looks like ours names no thread: to postmaster, it is held for
    // whoever runs the mail system, in no thread.
    let forged = message(
        "References: <sp2.0000000000000001.aaaaaaaaaaaaaaaa@reply.example.test>\r\n",
        "postmaster@reply.example.test",
        "forged@x",
        "Forged.",
    );
    let outcome = w.pipeline.process(&env, forged).await.unwrap();
    let Outcome::Held {
        id: postmaster,
        reason: HoldReason::ToPostmaster,
    } = outcome
    else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        w.fixture
            .store
            .held(postmaster)
            .await
            .unwrap()
            .summary
            .thread,
        None
    );

    let released = w
        .pipeline
        .release(id, &env, raw.clone(), "dr.lee", None)
        .await;
    assert!(
        matches!(released, Ok(Outcome::Filed { .. })),
        "{released:?}"
    );
    assert_eq!(bodies(&w).await[1], "Written without a token.");
    let held = w.fixture.store.held(id).await.unwrap();
    assert_eq!(held.summary.status, HeldStatus::Released);
    assert_eq!(held.summary.decided_by.as_deref(), Some("dr.lee"));
    let twice = w.pipeline.release(id, &env, raw, "dr.lee", None).await;
    assert!(matches!(twice, Err(ReleaseError::Decided(_))), "{twice:?}");
    assert_eq!(bodies(&w).await.len(), 2);
}

/// Regression: a participant removed between RCPT (where the token was checked) and the end
/// of DATA still had that one message filed. The commit checks again.
#[tokio::test]
async fn removal_between_rcpt_and_data_files_nothing() {
    let w = world().await;
    let target = match w.pipeline.check_recipient(&w.reply_to).await {
        Ok(Recipient::Reply(t)) => t,
        other => panic!("{other:?}"),
    };
    let jane = Address::parse("jane@example.test").unwrap();
    w.fixture
        .store
        .remove_participant(w.thread, &jane)
        .await
        .unwrap();
    let mut env = envelope("jane@example.test", &[&w.reply_to]);
    env.verified.push(target);
    let raw = message("", &w.reply_to, "late@x", "Sent just after removal.");
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    // Refused while the SMTP transaction is open: the sender's server tells them.
    assert!(
        matches!(
            outcome,
            Outcome::Refused {
                reason: "participant-removed",
                refusal: Some(crate::domain::fate::Refusal { code: 550, .. })
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(bodies(&w).await.len(), 1);
}

/// Regression: removing a participant left their queued notification to go out, with
/// content. It is cancelled at once.
#[tokio::test]
async fn removal_cancels_waiting_notifications() {
    let w = world().await;
    let store = &w.fixture.store;
    let jane = Address::parse("jane@example.test").unwrap();
    assert_eq!(store.remove_participant(w.thread, &jane).await.unwrap(), 1);
    let rows = store
        .list_notifications(None, Some(w.thread))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, DeliveryStatus::Cancelled);
    assert_eq!(rows[0].attempts, 0);
    let due = store
        .claim(crate::store::queue::Queue::Notifications, "test", 10, 60)
        .await
        .unwrap();
    assert!(due.is_empty(), "a cancelled notification is never claimed");
}

/// Regression: a delivery report sent by anyone to postmaster, naming a notification's
/// Message-ID, marked it bounced. Only one sent with a null sender to the notification's own
/// bounce address changes its status; the other is recorded as information.
#[tokio::test]
async fn only_a_verified_delivery_report_changes_a_status() {
    let w = world().await;
    let store = &w.fixture.store;
    store
        .record_attempts(&[(
            w.notification,
            crate::store::Attempt::Sent {
                reply: "250 ok".into(),
                at: crate::clock::Clock::system().now(),
                tls: None,
                as_secure: false,
            },
        )])
        .await
        .unwrap();
    let dsn = |to: &str| {
        format!(
            "From: MAILER-DAEMON@mx.example.test\r\nTo: {to}\r\nSubject: Undelivered\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; jane@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{}>\r\nSubject: S\r\n--B--\r\n",
            w.notification_id
        )
        .into_bytes()
    };
    let status = || async {
        store
            .list_notifications(None, Some(w.thread))
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.id == w.notification)
            .unwrap()
            .status
    };
    let postmaster = "postmaster@reply.example.test";
    for env in [
        envelope("attacker@evil.test", &[postmaster]),
        envelope("", &[postmaster]),
    ] {
        let outcome = w.pipeline.process(&env, dsn(postmaster)).await.unwrap();
        assert_eq!(
            outcome,
            Outcome::DeliveryStatus {
                notification: w.notification
            }
        );
        assert_eq!(
            status().await,
            DeliveryStatus::Sent,
            "unverified: no change"
        );
    }
    let bounce = bounce_address(&w.fixture.keyring, w.notification.0, DOMAIN);
    // The right address but a sender: still not a bounce.
    w.pipeline
        .process(&envelope("attacker@evil.test", &[&bounce]), dsn(&bounce))
        .await
        .unwrap();
    assert_eq!(status().await, DeliveryStatus::Sent);
    let jane = Address::parse("jane@example.test").unwrap();
    assert_eq!(
        store.person(&jane).await.unwrap().unwrap().convenience,
        Some(true)
    );
    w.pipeline
        .process(&envelope("", &[&bounce]), dsn(&bounce))
        .await
        .unwrap();
    assert_eq!(status().await, DeliveryStatus::Bounced);
    // A hard bounce of a convenience notification: Jane gets no more content by email, and
    // the thread's staff are told.
    let person = store.person(&jane).await.unwrap().unwrap();
    assert_eq!(person.convenience, Some(false));
    assert_eq!(person.convenience_by.as_deref(), Some("bounce"));
    let notices: Vec<_> = store
        .list_notifications(None, Some(w.thread))
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.kind == "notice-made-secure")
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].recipient, "lee@clinic.test");
}

/// A complaint (an ARF feedback report) about a convenience notification, to its bounce
/// address, withdraws the recipient's consent like a hard bounce; Jane's next notification in
/// the thread is a secure one.
#[tokio::test]
async fn a_spam_complaint_makes_the_recipient_secure() {
    let w = world().await;
    let store = &w.fixture.store;
    let bounce = bounce_address(&w.fixture.keyring, w.notification.0, DOMAIN);
    let arf = format!(
        "From: fbl@provider.test\r\nTo: {bounce}\r\nSubject: complaint\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\r\n--F\r\nContent-Type: text/plain\r\n\r\nA user reported this as spam.\r\n--F\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n--F\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{}>\r\n--F--\r\n",
        w.notification_id
    );
    let outcome = w
        .pipeline
        .process(&envelope("", &[&bounce]), arf.into_bytes())
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Outcome::DeliveryStatus {
            notification: w.notification
        }
    );
    let jane = Address::parse("jane@example.test").unwrap();
    let person = store.person(&jane).await.unwrap().unwrap();
    assert_eq!(person.convenience, Some(false));
    assert_eq!(person.convenience_by.as_deref(), Some("complaint"));
    // Lee posts again: Jane's notification is secure, though the thread is in convenience mode.
    let lee = Address::parse("lee@clinic.test").unwrap();
    store
        .post_message(w.thread, &lee, "Please confirm your address.", Via::Cli)
        .await
        .unwrap();
    let latest = store
        .list_notifications(None, Some(w.thread))
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.recipient == "jane@example.test" && n.kind == "message")
        .unwrap();
    assert_eq!(latest.mode, Mode::Secure);
}

/// Regression: a rejected message with a valid token kept its whole raw copy. Only filed
/// (and held) messages keep one.
#[tokio::test]
async fn only_filed_and_held_messages_keep_a_raw_copy() {
    let w = world().await;
    let wrong_sender = message("", &w.reply_to, "wrong@x", "Not Jane.")
        .into_iter()
        .collect::<Vec<u8>>();
    let wrong_sender = String::from_utf8(wrong_sender)
        .unwrap()
        .replace("From: jane@example.test", "From: mallory@example.test")
        .into_bytes();
    let outcome = w
        .pipeline
        .process(
            &envelope("mallory@example.test", &[&w.reply_to]),
            wrong_sender,
        )
        .await
        .unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Refused {
                reason: "sender-mismatch",
                refusal: Some(_)
            }
        ),
        "{outcome:?}"
    );
    let filed = w
        .pipeline
        .process(
            &envelope("jane@example.test", &[&w.reply_to]),
            message("", &w.reply_to, "right@x", "From Jane."),
        )
        .await
        .unwrap();
    assert!(matches!(filed, Outcome::Filed { .. }));
    let rows: Vec<(String, bool)> = sqlx::query_as(
        "SELECT outcome, raw IS NOT NULL FROM inbound ORDER BY received_at, outcome",
    )
    .fetch_all(w.fixture.store.pool())
    .await
    .unwrap();
    let mut rows = rows;
    rows.sort();
    assert_eq!(
        rows,
        vec![("filed".to_owned(), true), ("rejected".to_owned(), false)]
    );
}

/// A message beyond the structural caps (here: thousands of header fields) is held unparsed;
/// a person's release parses and files it anyway.
#[tokio::test]
async fn a_message_over_the_structural_caps_is_held_unparsed() {
    let w = world().await;
    let many = "X-Filler: x\r\n".repeat(MAX_HEADERS + 1);
    let raw = message(&many, &w.reply_to, "caps@x", "Still a reply.");
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let outcome = w.pipeline.process(&env, raw.clone()).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::TooComplex);
    let released = w
        .pipeline
        .release(id, &env, raw, "staff", None)
        .await
        .unwrap();
    assert!(matches!(released, Outcome::Filed { .. }), "{released:?}");
    assert_eq!(bodies(&w).await[1], "Still a reply.");
    for (raw, cap) in [
        (
            format!("--b{}\r\n", "x").repeat(MAX_BOUNDARY_LINES + 1),
            "too-many-parts",
        ),
        (
            "Content-Type: multipart/mixed; boundary=x\r\n".repeat(MAX_MULTIPARTS + 1),
            "too-deeply-nested",
        ),
    ] {
        let raw = format!("From: a@b\r\n\r\n{raw}");
        assert_eq!(within_caps(raw.as_bytes()), Err(cap));
    }
    assert_eq!(
        within_caps(b"From: a@b\r\n\r\n-- \r\n------\r\n--\r\nsig\r\n"),
        Ok(())
    );
}

/// A thread whose stored key no longer opens (a damaged row, a keyring without that key)
/// would fail every retry the same way: the reply is held, not answered 451 for days.
#[tokio::test]
async fn a_reply_to_a_thread_that_cannot_be_opened_is_held() {
    let w = world().await;
    w.fixture
        .store
        .execute_for_test(&format!(
            "UPDATE threads SET wrapped_key = x'00112233' WHERE id = {}",
            w.thread.0
        ))
        .await;
    let raw = message("", &w.reply_to, "unreadable@x", "Is anyone there?");
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let outcome = w.pipeline.process(&env, raw.clone()).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::ProcessingFailed);
    assert_eq!(w.fixture.store.held(id).await.unwrap().raw, raw);
}

/// The database going away is the one failure that is worth retrying: 451 (the `Err`), and
/// nothing held.
#[tokio::test]
async fn a_database_that_is_away_asks_for_a_retry() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    w.fixture.store.close().await;
    let raw = message("", &w.reply_to, "later@x", "Try me later.");
    let outcome = w.pipeline.process(&env, raw).await;
    assert!(
        matches!(&outcome, Err(Temporary::Store(e)) if e.is_transient()),
        "{outcome:?}"
    );
    assert!(matches!(
        w.pipeline.check_recipient(&w.reply_to).await,
        Err(RecipientError::Unavailable)
    ));
}

/// Regression (issue 12): a forged `From:` with the participant's address, and the relay's
/// `dmarc=fail`, was filed as the participant's message. Now it is held; the participant is
/// told nothing (the sender may be forged); staff see the count; a release files it and says
/// who released it and what authentication had found.
#[tokio::test]
async fn a_forged_sender_is_held_and_nobody_is_told() {
    let w = world().await;
    let outbox_before = w
        .fixture
        .store
        .list_notifications(None, None)
        .await
        .unwrap()
        .len();
    let raw = unauthenticated(
        "Authentication-Results: mx.practice.test; spf=fail smtp.mailfrom=jane@example.test; \
         dkim=none; dmarc=fail (p=reject) header.from=example.test\r\n",
        &w.reply_to,
        "forged@x",
        "Please send my records to this new address.",
    );
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let outcome = w.pipeline.process(&env, raw.clone()).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::AuthFailed);
    assert_eq!(bodies(&w).await.len(), 1, "nothing filed");
    assert_eq!(
        w.fixture
            .store
            .list_notifications(None, None)
            .await
            .unwrap()
            .len(),
        outbox_before,
        "no notice to the token's owner"
    );
    let view = w.fixture.store.thread(w.thread).await.unwrap();
    assert_eq!(view.held, 1, "staff see that something waits");
    let held = w.fixture.store.held(id).await.unwrap();
    let auth = held.summary.auth.clone().expect("the verdict is kept");
    assert!(
        auth.contains("dmarc=fail") && auth.contains("mx.practice.test"),
        "{auth}"
    );

    let released = w
        .pipeline
        .release(id, &env, raw, "dr.lee", held.summary.auth.clone())
        .await
        .unwrap();
    assert!(matches!(released, Outcome::Filed { .. }), "{released:?}");
    let view = w.fixture.store.thread(w.thread).await.unwrap();
    assert_eq!(view.held, 0);
    let filed = view.messages.last().unwrap();
    let record = filed.auth.as_deref().unwrap();
    assert!(
        record.starts_with("released by dr.lee; held with: "),
        "{record}"
    );
    assert!(record.contains("dmarc=fail"), "{record}");
}

/// Only the configured relay's results count: a sender's own `Authentication-Results`
/// claiming a pass (under any other authserv-id, or below the relay's) is ignored.
#[tokio::test]
async fn results_from_anyone_but_the_relay_are_ignored() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let claims = "Authentication-Results: attacker.test; dmarc=pass header.from=example.test\r\n\
                  Authentication-Results: mx.practice.test.attacker.test; dmarc=pass \
                  header.from=example.test\r\n";
    let raw = unauthenticated(claims, &w.reply_to, "claims@x", "Trust me.");
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Held {
                reason: HoldReason::AuthFailed,
                ..
            }
        ),
        "{outcome:?}"
    );
    // The relay's own header, topmost, decides even with a forged pass below it.
    let raw = unauthenticated(
        "Authentication-Results: mx.practice.test; dmarc=fail header.from=example.test\r\n\
         Authentication-Results: mx.practice.test; dmarc=pass header.from=example.test\r\n",
        &w.reply_to,
        "below@x",
        "Trust me too.",
    );
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Held {
                reason: HoldReason::AuthFailed,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(bodies(&w).await.len(), 1);
}

/// A pass for another domain than the participant's is no pass for the participant.
#[tokio::test]
async fn a_pass_for_another_domain_is_held() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let raw = unauthenticated(
        "Authentication-Results: mx.practice.test; dkim=pass header.d=attacker.test; \
         dmarc=pass header.from=attacker.test\r\n",
        &w.reply_to,
        "other-domain@x",
        "Hello.",
    );
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Held {
                reason: HoldReason::AuthFailed,
                ..
            }
        ),
        "{outcome:?}"
    );
}

/// `From:` naming two mailboxes (or two `From:` fields) is held: who wrote it cannot be told.
#[tokio::test]
async fn more_than_one_author_is_held() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    for (n, extra) in [
        "From: someone@attacker.test\r\n",
        "X-Note: the From below names two\r\n",
    ]
    .iter()
    .enumerate()
    {
        let mut raw = message(extra, &w.reply_to, &format!("two-{n}@x"), "Who wrote me?");
        if n == 1 {
            let text = String::from_utf8(raw).unwrap().replacen(
                "From: jane@example.test",
                "From: jane@example.test, someone@attacker.test",
                1,
            );
            raw = text.into_bytes();
        }
        let outcome = w.pipeline.process(&env, raw).await.unwrap();
        assert!(
            matches!(
                outcome,
                Outcome::Held {
                    reason: HoldReason::MultipleFrom,
                    ..
                }
            ),
            "{n}: {outcome:?}"
        );
    }
    assert_eq!(bodies(&w).await.len(), 1);
}

/// What authentication found is kept with the filed message; a reply linked only by a
/// Message-ID is filed when its sender authenticates.
#[tokio::test]
async fn the_verdict_is_recorded_and_an_authenticated_reference_is_filed() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let raw = message("", &w.reply_to, "ok@x", "Thank you, see you Tuesday.");
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    assert!(matches!(outcome, Outcome::Filed { .. }), "{outcome:?}");
    let refs = message(
        &format!(
            "In-Reply-To: <{0}>\r\nReferences: <{0}>\r\n",
            w.notification_id
        ),
        "postmaster@reply.example.test",
        "refs-authenticated@x",
        "Written from another device.",
    );
    let env = envelope("jane@example.test", &["postmaster@reply.example.test"]);
    let outcome = w.pipeline.process(&env, refs).await.unwrap();
    assert!(matches!(outcome, Outcome::Filed { .. }), "{outcome:?}");
    let view = w.fixture.store.thread(w.thread).await.unwrap();
    let filed = &view.messages[1..];
    assert_eq!(filed.len(), 2);
    for m in filed {
        assert_eq!(
            m.auth.as_deref(),
            Some(
                "spf=pass smtp.mailfrom=example.test; dkim=pass header.d=example.test; \
                 dmarc=pass header.from=example.test (from mx.practice.test)"
            )
        );
    }
    // Staff posts carry no verdict.
    assert_eq!(view.messages[0].auth, None);
}

/// A recipient who withdrew consent is in a secure thread as far as email goes: their reply is
/// not filed but held for staff, and they are told (content-free) to answer through the
/// secure link.
#[tokio::test]
async fn a_reply_without_consent_is_not_filed() {
    let w = world().await;
    w.fixture
        .store
        .set_consent(crate::store::Consent {
            address: Address::parse("jane@example.test").unwrap(),
            convenience: false,
            text: "Email is not fully protected.".into(),
            by: "cli:staff".into(),
        })
        .await
        .unwrap();
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let raw = message("", &w.reply_to, "no-consent@x", "Here is my answer.");
    let outcome = w.pipeline.process(&env, raw).await.unwrap();
    let Outcome::Held { id, reason } = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(reason, HoldReason::SecureThread);
    assert_eq!(bodies(&w).await.len(), 1);
    let notices =
        sqlx::query_scalar::<_, String>("SELECT status FROM outbox WHERE kind = 'notice-secure'")
            .fetch_all(w.fixture.store.pool())
            .await
            .unwrap();
    assert_eq!(notices, vec!["queued".to_owned()]);
    // Staff may still file it.
    let held = w.fixture.store.held(id).await.unwrap();
    let env = Envelope::from_held(&held.envelope, held.summary.door);
    let released = w
        .pipeline
        .release(id, &env, held.raw, "dr.lee", None)
        .await
        .unwrap();
    assert!(matches!(released, Outcome::Filed { .. }), "{released:?}");
    assert_eq!(bodies(&w).await[1], "Here is my answer.");
}

/// Kinds of mail the outcome invariant is checked over: one of each way a message can end.
#[derive(Debug, Clone, Copy)]
enum Sent {
    Reply,
    AutoReply,
    Loop,
    Bounce,
    /// A copy of the last message sent (or of a reply, if none was sent yet).
    Copy,
    Garbage,
    ToPostmaster,
    Stranger,
    RewrittenEnvelope,
    Unauthenticated,
    TwoAuthors,
    TooComplex,
    Empty,
    Panic,
    ExpiredToken,
    AfterClosing,
}

const SENT: &[Sent] = &[
    Sent::Reply,
    Sent::AutoReply,
    Sent::Loop,
    Sent::Bounce,
    Sent::Copy,
    Sent::Garbage,
    Sent::ToPostmaster,
    Sent::Stranger,
    Sent::RewrittenEnvelope,
    Sent::Unauthenticated,
    Sent::TwoAuthors,
    Sent::TooComplex,
    Sent::Empty,
    Sent::Panic,
    Sent::ExpiredToken,
    Sent::AfterClosing,
];

/// The ledger's rows by outcome word, and the counts of messages and held mail.
async fn tally(w: &World) -> (Vec<(String, i64)>, usize, i64) {
    let pool = w.fixture.store.pool();
    let ledger =
        sqlx::query_as("SELECT outcome, COUNT(*) FROM inbound GROUP BY outcome ORDER BY 1")
            .fetch_all(pool)
            .await
            .unwrap();
    let held = sqlx::query_scalar("SELECT COUNT(*) FROM held")
        .fetch_one(pool)
        .await
        .unwrap();
    (ledger, bodies(w).await.len(), held)
}

/// The machine reasons an acknowledged message may be ignored for (and, over IMAP only, mail
/// no reply address of ours names).
fn machine_reason(reason: &str, door: Via) -> bool {
    matches!(
        reason,
        "loop" | "auto-reply" | "unmatched-bounce" | "duplicate"
    ) || (door == Via::Imap && reason == "no-valid-token")
}

/// Issue 23's invariant, over any sequence of any kind of mail through either door, with one
/// or several recipients: after an acknowledgement the message is filed, held (sealed, whole),
/// or ignored for a machine reason; only the SMTP door refuses, and only while it can still
/// say so to a single recipient's sender; every message leaves exactly one ledger row; a copy
/// of something filed is a duplicate whatever else it is.
async fn outcome_invariant(steps: Vec<(Sent, bool, bool)>) {
    let w = world().await;
    let ring = w.fixture.keyring.clone();
    let now = w.fixture.store.clock().now();
    let expired = ReplyToken::issue(&ring, w.thread, w.jane, now - 40 * 86_400).address(DOMAIN);
    let mut last: Option<(Vec<u8>, Envelope)> = None;
    // Whether the last message sent was kept in the thread (filed, or held there).
    let mut kept_last = false;
    for (n, (sent, imap, two)) in steps.into_iter().enumerate() {
        let id = format!("step-{n}@x");
        let to = &w.reply_to;
        let mut env = envelope("jane@example.test", &[to]);
        let raw = match sent {
            Sent::Reply => message("", to, &id, &format!("Answer number {n}.")),
            Sent::AutoReply => message("Auto-Submitted: auto-replied\r\n", to, &id, "Away."),
            Sent::Loop => message(
                &format!("{}: {DOMAIN}\r\n", crate::domain::mail::LOOP_HEADER),
                to,
                &id,
                "Ours.",
            ),
            Sent::Bounce => {
                env = envelope("", &[to]);
                format!(
                    "From: MAILER-DAEMON@x\r\nTo: {to}\r\nMessage-ID: <{id}>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n--B--\r\n"
                )
                .into_bytes()
            }
            Sent::Copy => match &last {
                Some((raw, e)) => {
                    env = e.clone();
                    raw.clone()
                }
                None => message("", to, &id, "The first, and its copy."),
            },
            Sent::Garbage => b"\x00\x01 not mail at all".to_vec(),
            Sent::ToPostmaster => {
                env = envelope("someone@example.net", &["postmaster@reply.example.test"]);
                message("", "postmaster@reply.example.test", &id, "Who runs this?")
            }
            Sent::Stranger => {
                env = envelope("mallory@example.test", &[to]);
                String::from_utf8(message("", to, &id, "Not Jane."))
                    .unwrap()
                    .replace("From: jane@", "From: mallory@")
                    .into_bytes()
            }
            Sent::RewrittenEnvelope => {
                env = envelope("bounces+1@lists.example", &[to]);
                unauthenticated("", to, &id, "Through a list.")
            }
            Sent::Unauthenticated => unauthenticated("", to, &id, "Unsigned."),
            Sent::TwoAuthors => message("From: bob@example.test\r\n", to, &id, "Us two."),
            Sent::TooComplex => {
                message(&"X-Filler: x\r\n".repeat(MAX_HEADERS + 1), to, &id, "Big.")
            }
            Sent::Empty => message("", to, &id, "> Your results are in."),
            Sent::Panic => message(
                &format!("{}\r\n", String::from_utf8_lossy(PANIC_TRIGGER)),
                to,
                &id,
                "Boom.",
            ),
            Sent::ExpiredToken => {
                env = envelope("jane@example.test", &[&expired]);
                message("", &expired, &id, "Late answer.")
            }
            Sent::AfterClosing => {
                w.fixture.store.close_thread(w.thread).await.unwrap();
                message("", to, &id, "After closing.")
            }
        };
        if imap {
            env.door = Via::Imap;
            env.rcpt_to.clear();
            env.mail_from = None;
        } else if two {
            env.rcpt_to.push("postmaster@reply.example.test".into());
        }
        let before = tally(&w).await;
        let outcome = w.pipeline.process(&env, raw.clone()).await;
        if matches!(sent, Sent::AfterClosing) {
            w.fixture.store.reopen_thread(w.thread).await.unwrap();
        }
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // Would be held, and the held queue is full for where it came from: not
            // acknowledged (the sender tries again), and nothing was stored.
            Err(Temporary::HeldFull(_)) => {
                assert_eq!(tally(&w).await, before, "step {n} {sent:?}: nothing stored");
                continue;
            }
            Err(e) => panic!("step {n} {sent:?}: {e}"),
        };
        let after = tally(&w).await;
        let rows = |t: &(Vec<(String, i64)>, usize, i64)| t.0.iter().map(|(_, c)| c).sum::<i64>();
        assert_eq!(
            rows(&after),
            rows(&before) + 1,
            "{sent:?}: one ledger row each"
        );
        let grew = |word: &str| {
            let count = |t: &(Vec<(String, i64)>, usize, i64)| {
                t.0.iter().find(|(o, _)| o == word).map_or(0, |(_, c)| *c)
            };
            count(&after) == count(&before) + 1
        };
        let context = format!("step {n}: {sent:?} imap={imap} two={two} -> {outcome:?}");
        match &outcome {
            Outcome::Filed { .. } => {
                assert!(grew("filed"), "{context}");
                assert_eq!(after.1, before.1 + 1, "{context}");
            }
            Outcome::Duplicate { .. } => {
                assert!(grew("duplicate"), "{context}");
                assert_eq!((after.1, after.2), (before.1, before.2), "{context}");
            }
            Outcome::Held { id, .. } => {
                assert!(grew("held"), "{context}");
                let kept = w.fixture.store.held(*id).await.unwrap();
                assert_eq!(kept.raw, raw, "{context}: kept whole");
                assert_eq!(kept.summary.status, HeldStatus::Held, "{context}");
                assert_eq!(after.1, before.1, "{context}");
            }
            Outcome::Refused { refusal, .. } => {
                assert!(!imap, "{context}: IMAP cannot refuse");
                assert_eq!(
                    env.rcpt_to.len(),
                    1,
                    "{context}: refused for every recipient"
                );
                assert!(refusal.is_some_and(|r| r.code >= 500), "{context}");
                assert!(grew("rejected"), "{context}");
                assert_eq!((after.1, after.2), (before.1, before.2), "{context}");
            }
            Outcome::Ignored { reason } => {
                assert!(machine_reason(reason, env.door), "{context}");
                assert!(grew("ignored"), "{context}");
                assert_eq!((after.1, after.2), (before.1, before.2), "{context}");
            }
            Outcome::DeliveryStatus { .. } => assert!(grew("delivery-status"), "{context}"),
        }
        // A copy of something filed (or held) is a duplicate, never anything else — when the
        // copy names its conversation: over IMAP only the headers can (there is no envelope),
        // and a copy of headerless garbage names nothing (its first copy is kept all the same).
        let names_thread = !imap
            || raw
                .windows(w.reply_to.len())
                .any(|win| win == w.reply_to.as_bytes());
        if matches!(sent, Sent::Copy) && last.is_some() && kept_last && names_thread {
            assert!(matches!(outcome, Outcome::Duplicate { .. }), "{context}");
        }
        if !matches!(sent, Sent::Copy) {
            kept_last = match &outcome {
                Outcome::Filed { .. } => true,
                Outcome::Held { id, .. } => w
                    .fixture
                    .store
                    .held(*id)
                    .await
                    .unwrap()
                    .summary
                    .thread
                    .is_some(),
                _ => false,
            };
            last = Some((raw, env));
        }
    }
}

/// Copies of a filed message are duplicates, whatever else would hold them now.
#[tokio::test]
async fn a_copy_of_a_filed_reply_is_a_duplicate_even_in_a_closed_thread() {
    let w = world().await;
    let env = envelope("jane@example.test", &[&w.reply_to]);
    let raw = message("", &w.reply_to, "once@x", "Said once.");
    assert!(matches!(
        w.pipeline.process(&env, raw.clone()).await.unwrap(),
        Outcome::Filed { .. }
    ));
    w.fixture.store.close_thread(w.thread).await.unwrap();
    let again = w.pipeline.process(&env, raw).await.unwrap();
    assert!(matches!(again, Outcome::Duplicate { .. }), "{again:?}");
    let held = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM held")
        .fetch_one(w.fixture.store.pool())
        .await
        .unwrap();
    assert_eq!(held, 0);
}

mod invariant {
    use proptest::prelude::*;

    use super::*;

    fn step() -> impl Strategy<Value = (Sent, bool, bool)> {
        (0..SENT.len(), any::<bool>(), any::<bool>())
            .prop_map(|(i, imap, two)| (SENT[i], imap, two))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn every_message_is_filed_held_ignored_for_a_machine_reason_or_refused_in_smtp(
            steps in proptest::collection::vec(step(), 1..12)
        ) {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(outcome_invariant(steps));
        }
    }

    /// Every kind of mail, through each door, at least once (the random sequences above may
    /// miss one).
    #[tokio::test]
    async fn every_kind_through_both_doors() {
        let mut steps = Vec::new();
        for sent in SENT {
            for (imap, two) in [(false, false), (false, true), (true, false)] {
                steps.push((*sent, imap, two));
            }
        }
        outcome_invariant(steps).await;
    }
}
