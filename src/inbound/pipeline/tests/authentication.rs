//! Who a message is from: forged senders, whose results are believed, several authors, the
//! recorded verdict, and consent.

use super::*;

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
