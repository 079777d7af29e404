//! Delivery reports and complaints: only a verified one changes anything.

use super::*;

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
