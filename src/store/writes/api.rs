//! What the API keeps: its keys, and the answers to requests made with an Idempotency-Key.

use super::events::event;
use crate::domain::ApiKeyId;
use crate::store::StoreError;
use crate::store::api_keys::ApiKeyRecord;
use crate::store::idempotency::{Found, IdempotencyKey, KEEP_SECS, SealedAnswer};
use crate::store::sql::{Sql, args};

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
pub(crate) fn idempotency_begin(
    conn: &dyn Sql,
    k: &IdempotencyKey,
    now: i64,
) -> Result<Found, StoreError> {
    conn.exec(
        "DELETE FROM idempotency WHERE created_at < $1",
        args![now - KEEP_SECS],
    )?;
    let row: Option<Remembered> = conn
        .row(
            "SELECT fingerprint, status, body, key_id, wrapped_key, created_at FROM idempotency
             WHERE api_key_id = $1 AND key = $2",
            args![k.api_key.0, &k.key],
        )?
        .map(|r| -> Result<Remembered, StoreError> {
            Ok((
                r.bytes(0)?,
                r.opt_int(1)?
                    .map(|s| {
                        u16::try_from(s)
                            .map_err(|_| StoreError::Corrupt(format!("a remembered status {s}")))
                    })
                    .transpose()?,
                r.opt_bytes(2)?,
                r.opt_int(3)?,
                r.opt_bytes(4)?,
                r.int(5)?,
            ))
        })
        .transpose()?;
    Ok(match row {
        None => {
            conn.exec(
                "INSERT INTO idempotency (api_key_id, key, fingerprint, created_at)
                 VALUES ($1, $2, $3, $4)",
                args![k.api_key.0, &k.key, &k.fingerprint, now],
            )?;
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
            conn.exec(
                "UPDATE idempotency SET created_at = $1 WHERE api_key_id = $2 AND key = $3",
                args![now, k.api_key.0, &k.key],
            )?;
            Found::New
        }
        Some(_) => Found::InProgress,
    })
}

/// Keeps the answer to a request made with an Idempotency-Key, or (`None`: the request failed
/// in a way worth retrying) forgets the key.
pub(crate) fn idempotency_finish(
    conn: &dyn Sql,
    api_key: ApiKeyId,
    key: &str,
    answer: Option<&SealedAnswer>,
) -> Result<(), StoreError> {
    match answer {
        Some(a) => conn.exec(
            "UPDATE idempotency SET status = $1, body = $2, key_id = $3, wrapped_key = $4
             WHERE api_key_id = $5 AND key = $6",
            args![
                Some(a.status),
                &a.sealed,
                i64::from(a.wrapped.key_id),
                &a.wrapped.sealed,
                api_key.0,
                key
            ],
        )?,
        None => conn.exec(
            "DELETE FROM idempotency WHERE api_key_id = $1 AND key = $2",
            args![api_key.0, key],
        )?,
    };
    Ok(())
}

pub(crate) fn create_api_key(conn: &dyn Sql, k: &ApiKeyRecord, now: i64) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO api_keys (id, name, scope, secret_hash, created_at)
         VALUES ($1, $2, $3, $4, $5)",
        args![k.id.0, &k.name, k.scope.as_str(), &k.secret_hash, now],
    )?;
    event(
        conn,
        None,
        "apikey.created",
        serde_json::json!({"key": k.id.to_string(), "scope": k.scope.as_str()}),
        now,
    )
}

pub(crate) fn revoke_api_key(conn: &dyn Sql, id: ApiKeyId, now: i64) -> Result<(), StoreError> {
    let n = conn.exec(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        args![now, id.0],
    )?;
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
