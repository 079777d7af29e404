//! The outbox: claiming due notifications, fixing their Message-IDs, recording attempts.

use super::events::event;
use crate::domain::{DeliveryStatus, NotificationId, ThreadId};
use crate::store::sql::{Sql, args};
use crate::store::{Attempt, StoreError};

/// Fixes the Message-IDs of a batch on first composition; returns, in order, the one that
/// holds for each (an earlier attempt's, if there was one).
pub(crate) fn fix_message_ids(
    conn: &dyn Sql,
    candidates: &[(NotificationId, String)],
) -> Result<Vec<String>, StoreError> {
    candidates
        .iter()
        .map(|(id, candidate)| {
            conn.row(
                "UPDATE outbox SET email_message_id = COALESCE(email_message_id, $1)
                 WHERE id = $2 RETURNING email_message_id",
                args![candidate, id.0],
            )?
            .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))?
            .text(0)
        })
        .collect()
}

/// Records the outcomes of a batch of delivery attempts with their events, releasing the
/// claims.
pub(crate) fn record_attempts(
    conn: &dyn Sql,
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
        let thread: Option<i64> = conn.int(
            "UPDATE outbox SET status = $1, attempts = attempts + $2, last_error = $3,
                        relay_reply = COALESCE($4, relay_reply), next_attempt_at = $5,
                        sent_at = COALESCE($6, sent_at), claimed_by = NULL, claimed_until = NULL,
                        tls = COALESCE($8, tls),
                        mode = CASE WHEN $9 = 1 THEN 'secure' ELSE mode END
                 WHERE id = $7 RETURNING thread_id",
            args![
                status.as_str(),
                i64::from(counts),
                error,
                reply,
                next,
                sent_at,
                id.0,
                tls,
                as_secure
            ],
        )?;
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
