//! The outbox: claiming due notifications, fixing their Message-IDs, recording attempts.

use super::events::event;
use super::{codes, webhooks};
use crate::domain::{DeliveryStatus, NotificationId, ThreadId};
use crate::store::{Attempt, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// Releases every claim not held by `owner`: only valid while one process delivers (SQLite),
/// when the claims of a process that died are known to be dead.
pub(super) fn release_claims(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    webhooks::release_claims(conn, owner)?;
    codes::release_claims(conn, owner)?;
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE claimed_by IS NOT NULL AND claimed_by <> ?1",
        )?
        .execute([owner])? as u64)
}

/// Claims up to `limit` due notifications for `owner` until `now + lease_secs`, in the order
/// they are due.
pub(super) fn claim(
    conn: &Connection,
    owner: &str,
    now: i64,
    limit: i64,
    lease_secs: i64,
) -> Result<Vec<NotificationId>, StoreError> {
    let mut rows: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "UPDATE outbox SET claimed_by = ?1, claimed_until = ?2
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ?3
                   AND (claimed_until IS NULL OR claimed_until < ?3)
                 ORDER BY next_attempt_at, seq LIMIT ?4)
             RETURNING id, next_attempt_at, seq",
        )?
        .query_map(params![owner, now + lease_secs, now, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.sort_by_key(|(_, next, seq)| (*next, *seq));
    Ok(rows
        .into_iter()
        .map(|(id, _, _)| NotificationId(id))
        .collect())
}

/// Fixes the Message-IDs of a batch on first composition; returns, in order, the one that
/// holds for each (an earlier attempt's, if there was one).
pub(super) fn fix_message_ids(
    conn: &Connection,
    candidates: &[(NotificationId, String)],
) -> Result<Vec<String>, StoreError> {
    candidates
        .iter()
        .map(|(id, candidate)| {
            conn.prepare_cached(
                "UPDATE outbox SET email_message_id = COALESCE(email_message_id, ?1)
                 WHERE id = ?2 RETURNING email_message_id",
            )?
            .query_row(params![candidate, id.0], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))
        })
        .collect()
}

/// Records the outcomes of a batch of delivery attempts with their events, releasing the
/// claims.
pub(super) fn record_attempts(
    conn: &Connection,
    attempts: &[(NotificationId, Attempt)],
    now: i64,
) -> Result<(), StoreError> {
    for (id, attempt) in attempts {
        let (mut tls, mut as_secure) = (None, false);
        let (status, error, reply, next, sent_at) = match attempt {
            Attempt::Sent {
                reply,
                at,
                tls: protected,
                as_secure: secure,
            } => {
                (tls, as_secure) = (protected.as_deref(), *secure);
                (
                    DeliveryStatus::Sent,
                    None,
                    Some(reply.as_str()),
                    *at,
                    Some(*at),
                )
            }
            Attempt::Deferred {
                error,
                next_attempt_at,
            } => (
                DeliveryStatus::Deferred,
                Some(error.as_str()),
                None,
                *next_attempt_at,
                None,
            ),
            Attempt::Failed { error, at } => (
                DeliveryStatus::Failed,
                Some(error.as_str()),
                None,
                *at,
                None,
            ),
            Attempt::Cancelled { at } => (
                DeliveryStatus::Cancelled,
                Some("participant removed"),
                None,
                *at,
                None,
            ),
        };
        let counts = u8::from(status != DeliveryStatus::Cancelled);
        let thread: Option<i64> = conn
            .prepare_cached(
                "UPDATE outbox SET status = ?1, attempts = attempts + ?2, last_error = ?3,
                        relay_reply = COALESCE(?4, relay_reply), next_attempt_at = ?5,
                        sent_at = COALESCE(?6, sent_at), claimed_by = NULL, claimed_until = NULL,
                        tls = COALESCE(?8, tls),
                        mode = CASE WHEN ?9 THEN 'secure' ELSE mode END
                 WHERE id = ?7 RETURNING thread_id",
            )?
            .query_row(
                params![
                    status.as_str(),
                    counts,
                    error,
                    reply,
                    next,
                    sent_at,
                    id.0,
                    tls,
                    as_secure
                ],
                |r| r.get(0),
            )
            .optional()?;
        event(
            conn,
            thread.map(ThreadId),
            &format!("notification.{}", status.as_str()),
            if as_secure {
                serde_json::json!({"notification_id": id.to_string(), "sent_as": "secure"})
            } else {
                serde_json::json!({"notification_id": id.to_string()})
            },
            now,
        )?;
    }
    Ok(())
}

/// Takes a notification back from a worker that stopped before attempting it.
pub(super) fn unclaim(conn: &Connection, id: NotificationId) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?1")?
        .execute([id.0])?;
    Ok(())
}
