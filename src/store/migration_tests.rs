//! Schema migration 3 on a database written by version 2: no reply token left in the outbox,
//! display names sealed, raw copies of unfiled mail gone, addresses re-normalised, and
//! everything still readable.

use std::sync::Arc;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::Store;
use super::sqlite::MIGRATOR;
use crate::crypto::{Binding, DataKey, Keyring, ReplyToken};
use crate::domain::{ParticipantId, ThreadId};

#[tokio::test]
async fn version_2_databases_are_cleaned_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let keyring = Arc::new(Keyring::generate());
    let (thread, jane, lee, notification) = (
        ThreadId::random(),
        ParticipantId::random(),
        ParticipantId::random(),
        0x0abc_i64,
    );
    let token = ReplyToken::issue(&keyring, thread, jane, 1_795_000_000);
    let old_message_id = format!(
        "sp.{}.{notification:016x}@reply.example.test",
        token.as_str()
    );
    {
        let mut conn = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        let until_2 = sqlx::migrate::Migrator::with_migrations(
            MIGRATOR
                .migrations
                .iter()
                .filter(|m| m.version <= 2)
                .cloned()
                .collect(),
        );
        until_2.run(&mut conn).await.unwrap();
        let key = DataKey::generate();
        let wrapped = key.wrap(&keyring, thread);
        sqlx::query(
            "INSERT INTO threads (id, mode, key_id, wrapped_key, subject, created_at, last_activity_at)
             VALUES ($1, 'convenience', $2, $3, $4, 0, 0)",
        )
        .bind(thread.0)
        .bind(i64::from(wrapped.key_id))
        .bind(&wrapped.sealed)
        .bind(key.seal(Binding::ThreadSubject(thread), b"S"))
        .execute(&mut conn)
        .await
        .unwrap();
        for (id, address, name, role) in [
            (lee, "lee@clinic.test", Some("Dr Wombat"), "staff"),
            (jane, "jane@bücher.example", None, "recipient"),
        ] {
            sqlx::query(
                "INSERT INTO participants (id, thread_id, address, display_name, role, created_at)
                 VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(id.0)
            .bind(thread.0)
            .bind(address)
            .bind(name)
            .bind(role)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        sqlx::query(
            "INSERT INTO outbox (id, seq, thread_id, participant_id, recipient, mode, status,
                                 next_attempt_at, email_message_id, created_at)
             VALUES ($1, 1, $2, $3, 'jane@bücher.example', 'convenience', 'sent', 0, $4, 0)",
        )
        .bind(notification)
        .bind(thread.0)
        .bind(jane.0)
        .bind(&old_message_id)
        .execute(&mut conn)
        .await
        .unwrap();
        for (id, outcome) in [(1, "rejected"), (2, "filed")] {
            sqlx::query(
                "INSERT INTO inbound (id, received_at, door, thread_id, outcome, raw)
                 VALUES ($1, 0, 'smtp', $2, $3, x'00112233')",
            )
            .bind(id)
            .bind(thread.0)
            .bind(outcome)
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();
    }

    let url = format!("sqlite://{}", path.display());
    let store = Store::open(&url, keyring.clone(), crate::clock::Clock::system())
        .await
        .unwrap();
    let ids: Vec<String> = sqlx::query_scalar("SELECT email_message_id FROM outbox")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(
        ids,
        vec![format!("sp.n.{notification:016x}@reply.example.test")]
    );
    let everything: String = sqlx::query_scalar(
        "SELECT group_concat(COALESCE(email_message_id, '') || COALESCE(last_error, '')) FROM outbox",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(!everything.contains(token.as_str()));

    let names: Vec<Option<String>> = sqlx::query_scalar("SELECT display_name FROM participants")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(names.iter().all(Option::is_none), "no name left in clear");
    let view = store.thread(thread).await.unwrap();
    let lee_view = view.participants.iter().find(|p| p.id == lee).unwrap();
    assert_eq!(lee_view.display_name.as_deref(), Some("Dr Wombat"));
    let jane_view = view.participants.iter().find(|p| p.id == jane).unwrap();
    assert_eq!(jane_view.address.as_str(), "jane@xn--bcher-kva.example");

    let raw: Vec<(String, bool)> =
        sqlx::query_as("SELECT outcome, raw IS NOT NULL FROM inbound ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        raw,
        vec![("rejected".to_owned(), false), ("filed".to_owned(), true)]
    );
    // Version 6: everyone who took part is in the directory (staff as staff), under the
    // normal form of their address, and their participants point at them.
    let people: Vec<(String, String)> = store
        .people(None)
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.address.to_string(), p.details.kind.as_str().to_owned()))
        .collect();
    assert_eq!(
        people,
        vec![
            (
                "jane@xn--bcher-kva.example".to_owned(),
                "patient".to_owned()
            ),
            ("lee@clinic.test".to_owned(), "staff".to_owned())
        ]
    );
    let linked: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM participants p JOIN people pe ON pe.id = p.person_id
         WHERE pe.address = p.address",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(linked, 2);
    let status: String = sqlx::query_scalar("SELECT status FROM outbox")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(status, "sent", "the outbox survived its copy");
    // Opening again changes nothing more.
    store.close().await;
    let again = Store::open(&url, keyring, crate::clock::Clock::system())
        .await
        .unwrap();
    let view2 = again.thread(thread).await.unwrap();
    assert_eq!(view2.participants, view.participants);
}
