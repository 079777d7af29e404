//! What the API keeps: its keys, and the answers to requests made with an Idempotency-Key.

use super::events::event;
use crate::domain::ApiKeyId;
use crate::store::StoreError;
use crate::store::api_keys::ApiKeyRecord;
use crate::store::idempotency::{Found, IdempotencyKey, KEEP_SECS, SealedAnswer};
use rusqlite::{Connection, OptionalExtension, params};

/// A remembered request: its fingerprint, its answer (sealed, with its wrapped key) once
/// there is one, and when it began.
type Remembered = (
    Vec<u8>,
    Option<u16>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    i64,
);

/// Looks up (and, the first time, records) a request's Idempotency-Key; answers older than a
/// day are forgotten first.
pub(super) fn idempotency_begin(
    conn: &Connection,
    k: &IdempotencyKey,
    now: i64,
) -> Result<Found, StoreError> {
    conn.prepare_cached("DELETE FROM idempotency WHERE created_at < ?1")?
        .execute([now - KEEP_SECS])?;
    let row: Option<Remembered> = conn
        .prepare_cached(
            "SELECT fingerprint, status, body, key_id, wrapped_key, created_at FROM idempotency
             WHERE api_key_id = ?1 AND key = ?2",
        )?
        .query_row(params![k.api_key.0, k.key], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    Ok(match row {
        None => {
            conn.prepare_cached(
                "INSERT INTO idempotency (api_key_id, key, fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![k.api_key.0, k.key, k.fingerprint, now])?;
            Found::New
        }
        Some((fingerprint, ..)) if fingerprint != k.fingerprint => Found::Mismatch,
        Some((_, Some(status), Some(sealed), Some(key_id), Some(wrapped), _)) => Found::Answered {
            status,
            sealed,
            key_id,
            wrapped,
        },
        // Its process died mid-request: not done, and the key may be used again.
        Some((.., started)) if crate::domain::idempotency::abandoned(started, now) => {
            conn.prepare_cached(
                "UPDATE idempotency SET created_at = ?1 WHERE api_key_id = ?2 AND key = ?3",
            )?
            .execute(params![now, k.api_key.0, k.key])?;
            Found::New
        }
        Some(_) => Found::InProgress,
    })
}

/// Keeps the answer to a request made with an Idempotency-Key, or (`None`: the request failed
/// in a way worth retrying) forgets the key.
pub(super) fn idempotency_finish(
    conn: &Connection,
    api_key: ApiKeyId,
    key: &str,
    answer: Option<&SealedAnswer>,
) -> Result<(), StoreError> {
    match answer {
        Some(a) => conn
            .prepare_cached(
                "UPDATE idempotency SET status = ?1, body = ?2, key_id = ?3, wrapped_key = ?4
                 WHERE api_key_id = ?5 AND key = ?6",
            )?
            .execute(params![
                a.status,
                a.sealed,
                i64::from(a.wrapped.key_id),
                a.wrapped.sealed,
                api_key.0,
                key
            ])?,
        None => conn
            .prepare_cached("DELETE FROM idempotency WHERE api_key_id = ?1 AND key = ?2")?
            .execute(params![api_key.0, key])?,
    };
    Ok(())
}

pub(super) fn create_api_key(
    conn: &Connection,
    k: &ApiKeyRecord,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO api_keys (id, name, scope, secret_hash, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        k.id.0,
        k.name,
        k.scope.as_str(),
        k.secret_hash,
        now
    ])?;
    event(
        conn,
        None,
        "apikey.created",
        serde_json::json!({"key": k.id.to_string(), "scope": k.scope.as_str()}),
        now,
    )
}

pub(super) fn revoke_api_key(conn: &Connection, id: ApiKeyId, now: i64) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached("UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL")?
        .execute(params![now, id.0])?;
    if n == 0 {
        return Err(StoreError::Invalid(format!(
            "no API key {id} that is not already revoked"
        )));
    }
    event(
        conn,
        None,
        "apikey.revoked",
        serde_json::json!({"key": id.to_string()}),
        now,
    )
}
