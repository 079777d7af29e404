//! The PostgreSQL schema against a real server (see [`crate::store::testing::postgres`]).

use std::collections::BTreeMap;

use sqlx::Row;

use super::open_pool;
use crate::store::StoreError;
use crate::store::testing::postgres::fresh_database;

/// Every table of a schema with its columns, each with the kind of value it holds.
type Tables = BTreeMap<String, BTreeMap<String, &'static str>>;

/// The kind of value a column's declared type holds, in words both engines share.
fn kind(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => panic!("a column type neither engine should have: {other}"),
    }
}

async fn sqlite_tables() -> Tables {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let pool = crate::store::sqlite::open_pool(&url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut tables = Tables::new();
    for name in names {
        let columns = sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA table_info({name})")))
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r.get::<String, _>("name"),
                    kind(&r.get::<String, _>("type")),
                )
            })
            .collect();
        tables.insert(name, columns);
    }
    tables
}

async fn postgres_tables(pool: &sqlx::PgPool) -> Tables {
    let rows = sqlx::query(
        "SELECT table_name::TEXT AS t, column_name::TEXT AS c, data_type::TEXT AS d
           FROM information_schema.columns
          WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut tables = Tables::new();
    for r in rows {
        tables
            .entry(r.get("t"))
            .or_default()
            .insert(r.get("c"), kind(&r.get::<String, _>("d")));
    }
    tables
}

/// Both engines have the same tables with the same columns holding the same kinds of value:
/// a table or column added to one schema and forgotten in the other fails here (and would
/// be lost by `sealpost migrate` between them).
#[tokio::test]
async fn the_schema_matches_sqlite_table_for_table_and_column_for_column() {
    let pool = open_pool(&fresh_database().await).await.unwrap();
    let (sqlite, postgres) = (sqlite_tables().await, postgres_tables(&pool).await);
    assert!(sqlite.len() >= 20, "{sqlite:?}");
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the tables differ"
    );
    for (table, columns) in &sqlite {
        assert_eq!(columns, &postgres[table], "the columns of {table} differ");
    }
}

/// Instances that start together on an empty database migrate it once between them (the
/// migrator's advisory lock), and every one of them opens.
#[tokio::test]
async fn instances_starting_together_migrate_once() {
    let url = fresh_database().await;
    let opened = futures_util::future::join_all((0..4).map(|_| open_pool(&url))).await;
    for o in &opened {
        assert!(o.is_ok(), "{:?}", o.as_ref().err());
    }
    let pool = opened.into_iter().next().unwrap().unwrap();
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    let known: Vec<i64> = super::MIGRATOR.iter().map(|m| m.version).collect();
    assert_eq!(applied, known);
    let counters: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM counters")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(counters, 2, "the counters are seeded once");
}

/// A database a newer Sealpost has migrated is refused by this build rather than written in
/// a shape it does not know.
#[tokio::test]
async fn a_schema_newer_than_this_build_is_refused() {
    let url = fresh_database().await;
    let pool = open_pool(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    match open_pool(&url).await {
        Err(StoreError::Invalid(e)) => assert!(e.contains("99999"), "{e}"),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// A server that does not answer is an unavailable database (the daemon retries, SMTP says
/// 451), not a configuration error.
#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    match open_pool(&format!("postgres://postgres@127.0.0.1:{port}/sealpost")).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
    }
}
