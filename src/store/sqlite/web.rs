//! The writes of the web view: sessions, failed identity checks and lockout, read receipts.

use rusqlite::{Connection, OptionalExtension, params};

use super::write::{Done, event, queue_notice};
use crate::domain::{Address, NoticeReason, ParticipantId, PersonId, ThreadId};
use crate::store::StoreError;

/// A write of the web view.
pub(crate) enum WebOp {
    /// A failed identity check of `person` from the link of `thread`: counts it, and at
    /// `max_failures` locks the person and tells the thread's staff.
    CheckFailed {
        person: PersonId,
        thread: ThreadId,
        max_failures: u32,
    },
    /// A passed check: the count starts over and a session opens.
    SignIn {
        id_hash: Vec<u8>,
        person: PersonId,
        participant: ParticipantId,
    },
    Touch(Vec<u8>),
    SignOut(Vec<u8>),
    /// Messages seen by a participant (the first time counts).
    Read {
        participant: ParticipantId,
        messages: Vec<i64>,
    },
    /// Lifts a lockout; every session the person had is already ended.
    Unlock {
        address: Address,
        by: String,
    },
}

impl WebOp {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            WebOp::CheckFailed { .. } => "web-check-failed",
            WebOp::SignIn { .. } => "web-sign-in",
            WebOp::Touch(_) => "web-touch",
            WebOp::SignOut(_) => "web-sign-out",
            WebOp::Read { .. } => "web-read",
            WebOp::Unlock { .. } => "unlock-person",
        }
    }
}

pub(crate) fn apply(conn: &Connection, op: &WebOp, now: i64) -> Result<Done, StoreError> {
    match op {
        WebOp::CheckFailed {
            person,
            thread,
            max_failures,
        } => check_failed(conn, *person, *thread, *max_failures, now),
        WebOp::SignIn {
            id_hash,
            person,
            participant,
        } => {
            conn.prepare_cached("UPDATE people SET failed_checks = 0 WHERE id = ?1")?
                .execute([person.0])?;
            conn.prepare_cached(
                "INSERT INTO web_sessions (id_hash, person_id, participant_id, created_at,
                                           last_seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?4)",
            )?
            .execute(params![id_hash, person.0, participant.0, now])?;
            let thread: Option<i64> = conn
                .prepare_cached("SELECT thread_id FROM participants WHERE id = ?1")?
                .query_row([participant.0], |r| r.get(0))
                .optional()?;
            event(
                conn,
                thread.map(ThreadId),
                "web.signed-in",
                serde_json::json!({"person": person.0, "participant_id": participant.to_string()}),
                now,
            )?;
            Ok(Done::Nothing)
        }
        WebOp::Touch(id_hash) => {
            conn.prepare_cached("UPDATE web_sessions SET last_seen_at = ?1 WHERE id_hash = ?2")?
                .execute(params![now, id_hash])?;
            Ok(Done::Nothing)
        }
        WebOp::SignOut(id_hash) => {
            conn.prepare_cached(
                "UPDATE web_sessions SET ended_at = ?1 WHERE id_hash = ?2 AND ended_at IS NULL",
            )?
            .execute(params![now, id_hash])?;
            Ok(Done::Nothing)
        }
        WebOp::Read {
            participant,
            messages,
        } => {
            for m in messages {
                conn.prepare_cached(
                    "INSERT INTO message_reads (message_id, participant_id, read_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                )?
                .execute(params![m, participant.0, now])?;
            }
            Ok(Done::Nothing)
        }
        WebOp::Unlock { address, by } => {
            let person: Option<i64> = conn
                .prepare_cached(
                    "UPDATE people SET status = 'registered', failed_checks = 0, updated_at = ?1
                     WHERE address = ?2 RETURNING id",
                )?
                .query_row(params![now, address.as_str()], |r| r.get(0))
                .optional()?;
            let Some(person) = person else {
                return Err(StoreError::UnknownPerson(address.clone()));
            };
            event(
                conn,
                None,
                "person.unlocked",
                serde_json::json!({"person": person, "by": by}),
                now,
            )?;
            Ok(Done::Nothing)
        }
    }
}

fn check_failed(
    conn: &Connection,
    person: PersonId,
    thread: ThreadId,
    max_failures: u32,
    now: i64,
) -> Result<Done, StoreError> {
    let (failures, status): (i64, String) = conn
        .prepare_cached(
            "UPDATE people SET failed_checks = failed_checks + 1 WHERE id = ?1
             RETURNING failed_checks, status",
        )?
        .query_row([person.0], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let lock = failures >= i64::from(max_failures) && status != "locked";
    event(
        conn,
        Some(thread),
        "web.check-failed",
        serde_json::json!({"person": person.0, "failures": failures, "locked": lock || status == "locked"}),
        now,
    )?;
    if lock {
        conn.prepare_cached("UPDATE people SET status = 'locked', updated_at = ?1 WHERE id = ?2")?
            .execute(params![now, person.0])?;
        conn.prepare_cached(
            "UPDATE web_sessions SET ended_at = ?1 WHERE person_id = ?2 AND ended_at IS NULL",
        )?
        .execute(params![now, person.0])?;
        event(
            conn,
            Some(thread),
            "person.locked",
            serde_json::json!({"person": person.0, "failures": failures}),
            now,
        )?;
        let staff: Vec<i64> = conn
            .prepare_cached(
                "SELECT id FROM participants
                 WHERE thread_id = ?1 AND role = 'staff' AND revoked_at IS NULL",
            )?
            .query_map([thread.0], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for s in staff {
            queue_notice(
                conn,
                thread,
                ParticipantId(s),
                NoticeReason::RecipientLocked,
                now,
            )?;
        }
    }
    Ok(Done::Count(u64::try_from(failures).unwrap_or(0)))
}
