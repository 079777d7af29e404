//! What goes wrong on the way in: a panic, a database away, a removal racing a reply, a
//! thread that cannot be opened, mail over the caps; and which raw copies are kept.

use super::*;

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
