//! Issue 23's invariant: whatever arrives, through either door, ends filed, held or ignored
//! for a stated machine reason, with one ledger row each.

use super::*;

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

mod generated {
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
