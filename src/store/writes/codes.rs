//! The writes of the 24-hour rule: codes asked for and passed, and the SMS outbox's claims
//! and outcomes.

use super::events::event;
use crate::domain::codes::{Latest, still_fresh};
use crate::domain::{PersonId, ThreadId};
use crate::store::StoreError;
use crate::store::codes::{NewCode, SmsOutcome};
use crate::store::ops::{CodeOp, Done};
use crate::store::sql::{Sql, args};

pub(crate) fn apply(conn: &dyn Sql, op: &CodeOp, now: i64) -> Result<Done, StoreError> {
    match op {
        CodeOp::Asked {
            person,
            thread,
            code,
            throttle_secs,
        } => asked(conn, *person, *thread, code.as_ref(), *throttle_secs, now),
        CodeOp::Passed { id, person, thread } => {
            conn.exec(
                "UPDATE web_codes SET passed_at = $1 WHERE id = $2 AND passed_at IS NULL",
                args![now, *id],
            )?;
            // The attempt the code check reserved is given back: a right code is no failure.
            conn.exec(
                "UPDATE people
                 SET failed_checks = CASE WHEN failed_checks > 0 THEN failed_checks - 1 ELSE 0 END
                 WHERE id = $1",
                args![person.0],
            )?;
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
            conn.exec(
                "UPDATE web_codes SET expires_at = $1 WHERE id = $2",
                args![now, *id],
            )?;
            Ok(Done::Nothing)
        }
        CodeOp::RecordSms(attempts) => {
            for (id, a) in attempts {
                let (status, next, sent) = match a.outcome {
                    SmsOutcome::Sent => ("sent", None, Some(a.at)),
                    SmsOutcome::RetryAt(next) => ("queued", Some(next), None),
                    SmsOutcome::GaveUp => ("failed", None, None),
                };
                conn.exec(
                    "UPDATE sms_outbox
                     SET status = $1, attempts = attempts + 1, last_error = $2,
                         next_attempt_at = COALESCE($3, next_attempt_at), sent_at = $4,
                         claimed_by = NULL, claimed_until = NULL
                     WHERE id = $5 AND status = 'queued'",
                    args![status, &a.error, next, sent, *id],
                )?;
            }
            Ok(Done::Nothing)
        }
    }
}

fn asked(
    conn: &dyn Sql,
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
    // The person's row is the lock that makes the checks below and the new code one step
    // (PostgreSQL; on SQLite the writer holds the database).
    conn.row(
        &format!("SELECT id FROM people WHERE id = $1{}", conn.for_update()),
        args![person.0],
    )?;
    let latest: Option<(i64, Latest)> = conn
        .row(
            "SELECT id, created_at, expires_at, passed_at FROM web_codes
             WHERE link_hash = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
            args![&code.link_hash],
        )?
        .map(|r| {
            Ok::<_, StoreError>((
                r.int(0)?,
                Latest {
                    created_at: r.int(1)?,
                    expires_at: r.int(2)?,
                    passed: r.opt_int(3)?.is_some(),
                },
            ))
        })
        .transpose()?;
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
    let counts = conn
        .row(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN client = $3 THEN 1 ELSE 0 END), 0)
             FROM web_codes WHERE person_id = $1 AND created_at > $2",
            args![person.0, now - 3600, &code.client],
        )?
        .ok_or_else(|| StoreError::Corrupt("a count returned no row".into()))?;
    let count = |i| counts.int(i).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let (person_hour, client_hour) = (count(0)?, count(1)?);
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
    let id = conn
        .row(
            "INSERT INTO web_codes (person_id, thread_id, link_hash, key_id, nonce, created_at,
                                    expires_at, client)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            args![
                person.0,
                thread.0,
                &code.link_hash,
                code.key_id,
                &code.nonce,
                now,
                now + code.valid_secs,
                &code.client
            ],
        )?
        .ok_or_else(|| StoreError::Corrupt("a code was not written".into()))?
        .int(0)?;
    conn.exec(
        "INSERT INTO sms_outbox (person_id, code_id, next_attempt_at, give_up_at, created_at)
         VALUES ($1, $2, $3, $4, $3)",
        args![person.0, id, now, now + code.valid_secs],
    )?;
    event(
        conn,
        Some(thread),
        "web.code-sent",
        serde_json::json!({"person": person.0}),
        now,
    )?;
    Ok(Done::Count(u64::try_from(id).unwrap_or(0)))
}
