//! The web view's records: sessions, links sent later, codes and their text messages.

use crate::domain::ParticipantId;
use crate::store::StoreError;

use super::Pool;

/// A web session by its hash: (person_id, participant_id, the participant's thread, the
/// person's address, created_at, last_seen_at, ended_at).
#[allow(clippy::type_complexity)]
pub(crate) async fn web_session(
    pool: &Pool,
    id_hash: &[u8],
) -> Result<Option<(i64, i64, i64, String, i64, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.person_id, s.participant_id, p.thread_id, pe.address, s.created_at,
                s.last_seen_at, s.ended_at
         FROM web_sessions s JOIN participants p ON p.id = s.participant_id
              JOIN people pe ON pe.id = s.person_id
         WHERE s.id_hash = $1",
    )
    .bind(id_hash)
    .fetch_optional(pool)
    .await?)
}

/// Whether a notification of a message went out to `address` with a newer link than the one
/// `participant` got at `issued_at`: made later, or in the same second but queued after it
/// (the same participant's links of one second are the same link).
pub(crate) async fn newer_link_sent(
    pool: &Pool,
    address: &str,
    participant: ParticipantId,
    issued_at: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM outbox
                        WHERE recipient = $1 AND kind = 'message' AND status = 'sent'
                          AND (created_at > $2
                               OR (created_at = $2 AND seq > COALESCE(
                                     (SELECT MAX(seq) FROM outbox
                                      WHERE participant_id = $3 AND created_at = $2),
                                     9223372036854775807))))",
    )
    .bind(address)
    .bind(issued_at)
    .bind(participant.0)
    .fetch_one(pool)
    .await?)
}

/// The latest code asked from a link: (id, key id, nonce, expires_at, passed_at).
pub(crate) async fn latest_code(
    pool: &Pool,
    link_hash: &[u8],
) -> Result<Option<(i64, i64, Vec<u8>, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, key_id, nonce, expires_at, passed_at FROM web_codes
         WHERE link_hash = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(link_hash)
    .fetch_optional(pool)
    .await?)
}

/// A claimed text message: (id, person's address, code's key id, nonce, attempts,
/// give_up_at).
pub(crate) async fn due_sms(
    pool: &Pool,
    id: i64,
) -> Result<Option<(i64, String, i64, Vec<u8>, i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.id, p.address, c.key_id, c.nonce, s.attempts, s.give_up_at
         FROM sms_outbox s JOIN web_codes c ON c.id = s.code_id JOIN people p ON p.id = s.person_id
         WHERE s.id = $1 AND s.status = 'queued'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// The text messages, newest first: (id, person's address, status, attempts, last_error,
/// created_at, sent_at).
pub(crate) async fn sms_list(
    pool: &Pool,
    limit: i64,
) -> Result<Vec<(i64, String, String, i64, Option<String>, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT s.id, p.address, s.status, s.attempts, s.last_error, s.created_at, s.sent_at
         FROM sms_outbox s JOIN people p ON p.id = s.person_id
         ORDER BY s.id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?)
}
