//! The writes of the 24-hour rule: codes asked for and passed, and the SMS outbox's claims
//! and outcomes.

use crate::domain::codes::{Latest, still_fresh};
use rusqlite::{Connection, OptionalExtension, params};

use crate::domain::{PersonId, ThreadId};
use crate::store::StoreError;
use crate::store::codes::{NewCode, SmsOutcome};
use crate::store::ops::{CodeOp, Done};
use crate::store::writes::events::event;

pub(crate) fn apply(conn: &Connection, op: &CodeOp, now: i64) -> Result<Done, StoreError> {
    match op {
        CodeOp::Asked {
            person,
            thread,
            code,
            throttle_secs,
        } => asked(conn, *person, *thread, code.as_ref(), *throttle_secs, now),
        CodeOp::Passed { id, person, thread } => {
            conn.prepare_cached(
                "UPDATE web_codes SET passed_at = ?1 WHERE id = ?2 AND passed_at IS NULL",
            )?
            .execute(params![now, id])?;
            // The attempt the code check reserved is given back: a right code is no failure.
            conn.prepare_cached(
                "UPDATE people SET failed_checks = MAX(failed_checks - 1, 0) WHERE id = ?1",
            )?
            .execute([person.0])?;
            event(
                conn,
                Some(*thread),
                "web.code-passed",
                serde_json::json!({"person": person.0}),
                now,
            )?;
            Ok(Done::Nothing)
        }
        CodeOp::Void(id) => {
            conn.prepare_cached("UPDATE web_codes SET expires_at = ?1 WHERE id = ?2")?
                .execute(params![now, id])?;
            Ok(Done::Nothing)
        }
        CodeOp::RecordSms(attempts) => {
            for (id, a) in attempts {
                let (status, next, sent) = match a.outcome {
                    SmsOutcome::Sent => ("sent", None, Some(a.at)),
                    SmsOutcome::RetryAt(next) => ("queued", Some(next), None),
                    SmsOutcome::GaveUp => ("failed", None, None),
                };
                conn.prepare_cached(
                    "UPDATE sms_outbox
                     SET status = ?1, attempts = attempts + 1, last_error = ?2,
                         next_attempt_at = COALESCE(?3, next_attempt_at), sent_at = ?4,
                         claimed_by = NULL, claimed_until = NULL
                     WHERE id = ?5 AND status = 'queued'",
                )?
                .execute(params![status, a.error, next, sent, id])?;
            }
            Ok(Done::Nothing)
        }
    }
}

fn asked(
    conn: &Connection,
    person: PersonId,
    thread: ThreadId,
    code: Option<&NewCode>,
    throttle_secs: i64,
    now: i64,
) -> Result<Done, StoreError> {
    let Some(code) = code else {
        event(
            conn,
            Some(thread),
            "web.code-refused",
            serde_json::json!({"person": person.0, "why": "number"}),
            now,
        )?;
        return Ok(Done::Count(0));
    };
    let latest: Option<(i64, Latest)> = conn
        .prepare_cached(
            "SELECT id, created_at, expires_at, passed_at IS NOT NULL FROM web_codes
             WHERE link_hash = ?1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )?
        .query_row(params![code.link_hash], |r| {
            Ok((
                r.get(0)?,
                Latest {
                    created_at: r.get(1)?,
                    expires_at: r.get(2)?,
                    passed: r.get(3)?,
                },
            ))
        })
        .optional()?;
    if let Some((id, _)) = latest.filter(|(_, l)| still_fresh(Some(*l), throttle_secs, now)) {
        event(
            conn,
            Some(thread),
            "web.code-refused",
            serde_json::json!({"person": person.0, "why": "throttled"}),
            now,
        )?;
        return Ok(Done::Count(u64::try_from(id).unwrap_or(0)));
    }
    // However many links they hold, a person gets only so many codes an hour, and one client
    // only a few of those (see `domain::codes`).
    let (person_hour, client_hour): (u32, u32) = conn
        .prepare_cached(
            "SELECT COUNT(*), COALESCE(SUM(client = ?3), 0) FROM web_codes
             WHERE person_id = ?1 AND created_at > ?2",
        )?
        .query_row(params![person.0, now - 3600, code.client], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    if let Err(why) = crate::domain::codes::may_send(person_hour, client_hour) {
        event(
            conn,
            Some(thread),
            "web.code-refused",
            serde_json::json!({"person": person.0, "why": why}),
            now,
        )?;
        return Ok(Done::Count(0));
    }
    let id: i64 = conn
        .prepare_cached(
            "INSERT INTO web_codes (person_id, thread_id, link_hash, key_id, nonce, created_at,
                                    expires_at, client)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?
        .query_row(
            params![
                person.0,
                thread.0,
                code.link_hash,
                code.key_id,
                code.nonce,
                now,
                now + code.valid_secs,
                code.client
            ],
            |r| r.get(0),
        )?;
    conn.prepare_cached(
        "INSERT INTO sms_outbox (person_id, code_id, next_attempt_at, give_up_at, created_at)
         VALUES (?1, ?2, ?3, ?4, ?3)",
    )?
    .execute(params![person.0, id, now, now + code.valid_secs])?;
    event(
        conn,
        Some(thread),
        "web.code-sent",
        serde_json::json!({"person": person.0}),
        now,
    )?;
    Ok(Done::Count(u64::try_from(id).unwrap_or(0)))
}
