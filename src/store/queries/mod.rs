//! Every read of the store: queries through sqlx's pool, returning rows with content still
//! sealed. Dynamic SQL here (`IN (…)` lists, message windows) holds `$n` placeholders only;
//! values are always bound, never spliced into the text.
//!
//! One text for every engine: each engine mounts this folder as its `read` module and names
//! its own sqlx types in a module `engine` beside it (`Db`, `Pool`, `Conn`, `Args`, `DbRow`),
//! so the same queries compile once per engine. What they are written in is the SQL both
//! engines speak: `$n` placeholders, `CASE` rather than two-argument `MAX`, `COALESCE`, casts
//! to `BIGINT` where PostgreSQL would otherwise widen a sum.

use sqlx::{Arguments, AssertSqlSafe, FromRow};

use super::engine::{Args, Conn, Db, DbRow, Pool};
use crate::store::StoreError;

mod directory;
mod jobs;
mod mail;
mod threads;
mod web;
mod webhooks;

pub(crate) use directory::*;
pub(crate) use jobs::*;
pub(crate) use mail::*;
pub(crate) use threads::*;
pub(crate) use web::*;
pub(crate) use webhooks::*;

pub(super) const PARTICIPANT_COLUMNS: &str =
    "id, thread_id, address, display_name_sealed, role, revoked_at,
    (SELECT convenience FROM people WHERE people.address = participants.address) AS convenience,
    archived_at";
pub(super) const MESSAGE_COLUMNS: &str = "m.id, m.author_id, p.address, p.display_name_sealed, m.body, m.via, m.created_at, m.seq, m.auth, m.answers_id";

/// `$from, $from+1, …` for `n` values.
pub(super) fn placeholders(n: usize, from: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn bind<'q, T>(a: &mut Args, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, Db> + sqlx::Type<Db> + 'q,
{
    a.add(value)
        .map_err(|e| StoreError::Invalid(format!("binding a value: {e}")))
}

/// Rows whose `$column IN (…)` one of `values`; `select` ends with "IN".
pub(super) async fn fetch_in<T>(
    conn: &mut Conn,
    select: &str,
    values: impl Iterator<Item = i64>,
) -> Result<Vec<T>, StoreError>
where
    T: for<'r> FromRow<'r, DbRow> + Send + Unpin,
{
    let mut values: Vec<i64> = values.collect();
    values.sort_unstable();
    values.dedup();
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("{select} ({})", placeholders(values.len(), 1));
    let mut a = Args::default();
    for v in values {
        bind(&mut a, v)?;
    }
    Ok(sqlx::query_as_with(AssertSqlSafe(sql), a)
        .fetch_all(conn)
        .await?)
}
