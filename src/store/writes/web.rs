//! The writes of the web view: sessions, failed identity checks and lockout, read receipts.

use super::events::event;
use super::notices::{cancelled_events, notify_staff};
use crate::domain::lockout;
use crate::domain::{Address, MessageId, NoticeReason, ParticipantId, PersonId, ThreadId};
use crate::store::StoreError;
use crate::store::ops::{Done, WebOp};
use crate::store::sql::{Sql, args};

pub(crate) fn apply(conn: &dyn Sql, op: &WebOp, now: i64) -> Result<Done, StoreError> {
    match op {
        WebOp::Reserve {
            person,
            max_failures,
        } => {
            let (reservation, next) =
                lockout::reserve(standing(conn, *person)?, *max_failures, now);
            set_standing(conn, *person, &next, now)?;
            Ok(Done::Reserve(reservation))
        }
        WebOp::CheckFailed {
            person,
            thread,
            max_failures,
        } => check_failed(conn, *person, *thread, *max_failures, now),
        WebOp::LiftLock {
            person,
            thread,
            link_issued,
        } => lift_lock(conn, *person, *thread, *link_issued, now),
        WebOp::SignIn {
            id_hash,
            person,
            participant,
        } => sign_in(conn, id_hash, *person, *participant, now),
        WebOp::Touch(id_hash) => {
            conn.exec(
                "UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2",
                args![now, id_hash],
            )?;
            Ok(Done::Nothing)
        }
        WebOp::SignOut(id_hash) => {
            conn.exec(
                "UPDATE web_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
                args![now, id_hash],
            )?;
            Ok(Done::Nothing)
        }
        WebOp::Read {
            participant,
            messages,
        } => {
            for m in messages {
                conn.exec(
                    "INSERT INTO message_reads (message_id, participant_id, read_at)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    args![*m, participant.0, now],
                )?;
            }
            Ok(Done::Nothing)
        }
        WebOp::Cancel {
            thread,
            message,
            author,
        } => cancel(conn, *thread, *message, *author, now).map(|_| Done::Nothing),
        WebOp::Archive {
            participant,
            archived,
        } => archive(conn, *participant, *archived, now).map(|_| Done::Nothing),
        WebOp::Accessed { messages, reader } => {
            for m in messages {
                conn.exec(
                    "INSERT INTO message_access (message_id, reader, read_at)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    args![*m, reader, now],
                )?;
            }
            Ok(Done::Nothing)
        }
        WebOp::SetPasscode { address, hash, by } => {
            set_passcode(conn, address, hash.as_deref(), by, now)
        }
        WebOp::Unlock { address, by } => unlock(conn, address, by, now),
    }
}

/// A code passed from a link sent after the lock began lifts it (the rule is
/// [`lockout::code_lifts`]).
fn lift_lock(
    conn: &dyn Sql,
    person: PersonId,
    thread: ThreadId,
    link_issued: i64,
    now: i64,
) -> Result<Done, StoreError> {
    let s = standing(conn, person)?;
    if lockout::code_lifts(s, link_issued, now) {
        let lifted = lockout::Standing {
            failed: 0,
            locked: None,
            locks: s.locks,
        };
        set_standing(conn, person, &lifted, now)?;
        event(
            conn,
            Some(thread),
            "person.unlocked",
            serde_json::json!({"person": person.0, "by": "code"}),
            now,
        )?;
    }
    Ok(Done::Nothing)
}

/// A new session, in one step with the lock: a check that passed while a concurrent one
/// locked the person opens nothing.
fn sign_in(
    conn: &dyn Sql,
    id_hash: &[u8],
    person: PersonId,
    participant: ParticipantId,
    now: i64,
) -> Result<Done, StoreError> {
    let fresh = lockout::after_success(standing(conn, person)?, now)
        .map_err(|until| StoreError::Locked { until })?;
    set_standing(conn, person, &fresh, now)?;
    conn.exec(
        "INSERT INTO web_sessions (id_hash, person_id, participant_id, created_at,
                                   last_seen_at)
         VALUES ($1, $2, $3, $4, $4)",
        args![id_hash, person.0, participant.0, now],
    )?;
    let thread: Option<i64> = conn.int(
        "SELECT thread_id FROM participants WHERE id = $1",
        args![participant.0],
    )?;
    event(
        conn,
        thread.map(ThreadId),
        "web.signed-in",
        serde_json::json!({"person": person.0, "participant_id": participant.to_string()}),
        now,
    )?;
    Ok(Done::Nothing)
}

/// Sets (or, with `None`, clears) a person's passcode hash.
fn set_passcode(
    conn: &dyn Sql,
    address: &Address,
    hash: Option<&str>,
    by: &str,
    now: i64,
) -> Result<Done, StoreError> {
    let person: Option<i64> = conn.int(
        "UPDATE people SET passcode_hash = $1, updated_at = $2 WHERE address = $3
             RETURNING id",
        args![hash, now, address.as_str()],
    )?;
    let Some(person) = person else {
        return Err(StoreError::UnknownPerson(address.clone()));
    };
    event(
        conn,
        None,
        "person.passcode",
        serde_json::json!({"person": person, "set": hash.is_some(), "by": by}),
        now,
    )?;
    Ok(Done::Nothing)
}

/// Staff lift a lock at once.
fn unlock(conn: &dyn Sql, address: &Address, by: &str, now: i64) -> Result<Done, StoreError> {
    let person: Option<i64> = conn.int(
        "UPDATE people SET status = 'registered', failed_checks = 0, updated_at = $1,
                    locked_at = NULL, locked_until = NULL, lock_count = 0
             WHERE address = $2 RETURNING id",
        args![now, address.as_str()],
    )?;
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

/// A person's standing with the identity check, as stored; the row stays locked until the
/// operation ends (PostgreSQL: two instances deciding on one person's attempts take turns).
fn standing(conn: &dyn Sql, person: PersonId) -> Result<lockout::Standing, StoreError> {
    let r = conn
        .row(
            &format!(
                "SELECT failed_checks, status, locked_at, locked_until, lock_count, updated_at
                 FROM people WHERE id = $1{}",
                conn.for_update()
            ),
            args![person.0],
        )?
        .ok_or_else(|| StoreError::Invalid(format!("no person {person}")))?;
    let count = |i| r.int(i).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    let (at, until, updated) = (r.opt_int(2)?, r.opt_int(3)?, r.int(5)?);
    Ok(lockout::Standing {
        failed: count(0)?,
        locked: (r.text(1)? == "locked").then(|| (at.unwrap_or(updated), until)),
        locks: count(4)?,
    })
}

/// Stores a standing; a lock sets the status `locked`, the end of one sets it back.
fn set_standing(
    conn: &dyn Sql,
    person: PersonId,
    s: &lockout::Standing,
    now: i64,
) -> Result<(), StoreError> {
    let (at, until) = s
        .locked
        .map_or((None, None), |(at, until)| (Some(at), until));
    conn.exec(
        "UPDATE people SET failed_checks = $1, lock_count = $2, locked_at = $3, locked_until = $4,
                status = CASE WHEN $5 = 1 THEN 'locked'
                              WHEN status = 'locked' THEN 'registered' ELSE status END,
                updated_at = CASE WHEN (CASE WHEN status = 'locked' THEN 1 ELSE 0 END) <> $5
                                  THEN $6 ELSE updated_at END
         WHERE id = $7",
        args![
            s.failed,
            s.locks,
            at,
            until,
            s.locked.is_some(),
            now,
            person.0
        ],
    )?;
    Ok(())
}

/// A reserved attempt failed: at the last one the person is locked out for a while (see
/// [`crate::domain::lockout`]), every session of theirs ends — one opened this instant too,
/// since sign-in and this run one at a time here — and, when the lock comes back, the
/// thread's staff are told. Returns the attempts left (0: locked).
fn check_failed(
    conn: &dyn Sql,
    person: PersonId,
    thread: ThreadId,
    max_failures: u32,
    now: i64,
) -> Result<Done, StoreError> {
    let (s, lock) = lockout::after_failure(standing(conn, person)?, max_failures, now);
    set_standing(conn, person, &s, now)?;
    event(
        conn,
        Some(thread),
        "web.check-failed",
        serde_json::json!({"person": person.0, "failures": s.failed,
                           "locked": s.locked_at(now)}),
        now,
    )?;
    if let Some(lock) = lock {
        conn.exec(
            "UPDATE web_sessions SET ended_at = $1 WHERE person_id = $2 AND ended_at IS NULL",
            args![now, person.0],
        )?;
        event(
            conn,
            Some(thread),
            "person.locked",
            serde_json::json!({"person": person.0, "failures": s.failed, "until": lock.until,
                               "locks": s.locks}),
            now,
        )?;
        if lock.tell_staff {
            notify_staff(conn, thread, NoticeReason::RecipientLocked, now)?;
        }
    }
    let left = if s.locked_at(now) {
        0
    } else {
        max_failures.saturating_sub(s.failed)
    };
    Ok(Done::Count(u64::from(left)))
}

/// What is known about `message` of `thread` when `author` asks to take it back: the facts
/// [`crate::domain::message::may_cancel`] decides on. One query, the same for the web view's
/// button (a read) and the taking back itself (here, in the writer's transaction).
pub(crate) const CANCEL_FACTS: &str = "
    SELECT m.author_id = $3,
           m.cancelled_at IS NOT NULL,
           t.status = 'closed',
           EXISTS (SELECT 1 FROM messages l WHERE l.thread_id = m.thread_id AND l.seq > m.seq
                                             AND l.cancelled_at IS NULL),
           EXISTS (SELECT 1 FROM message_reads r WHERE r.message_id = m.id
                                                  AND r.participant_id <> $3),
           EXISTS (SELECT 1 FROM message_access a WHERE a.message_id = m.id),
           EXISTS (SELECT 1 FROM outbox o WHERE o.message_id = m.id AND o.kind = 'message'
                                           AND o.mode = 'convenience' AND o.status = 'sent')
    FROM messages m JOIN threads t ON t.id = m.thread_id
    WHERE m.id = $1 AND m.thread_id = $2";

/// Takes back a message, when [`crate::domain::message::may_cancel`] allows: its body is
/// destroyed, its waiting notifications are cancelled; a tombstone stays in the conversation
/// (who, when) and the audit trail records it.
fn cancel(
    conn: &dyn Sql,
    thread: ThreadId,
    message: MessageId,
    author: ParticipantId,
    now: i64,
) -> Result<(), StoreError> {
    use crate::domain::message::{CancelFacts, may_cancel};
    let r = conn
        .row(CANCEL_FACTS, args![message.0, thread.0, author.0])?
        .ok_or(StoreError::UnknownThread(thread))?;
    let yes = |i| r.int(i).map(|v| v != 0);
    let facts = CancelFacts {
        by_author: yes(0)?,
        withdrawn: yes(1)?,
        closed: yes(2)?,
        answered: yes(3)?,
        seen_by_participant: yes(4)?,
        read_by_practice: yes(5)?,
        delivered_with_content: yes(6)?,
    };
    may_cancel(&facts).map_err(StoreError::CannotCancel)?;
    let nothing: &[u8] = &[];
    conn.exec(
        "UPDATE messages SET cancelled_at = $1, cancelled_by = $2, body = $4 WHERE id = $3",
        args![now, author.0, message.0, nothing],
    )?;
    let cancelled: Vec<i64> = conn.ints(
        "UPDATE outbox SET status = 'cancelled', last_error = 'message cancelled',
                    next_attempt_at = $1
             WHERE message_id = $2 AND status IN ('queued', 'deferred') AND claimed_by IS NULL
             RETURNING id",
        args![now, message.0],
    )?;
    cancelled_events(conn, thread, &cancelled, now)?;
    event(
        conn,
        Some(thread),
        "message.cancelled",
        serde_json::json!({"message_id": message.to_string(), "participant_id": author.to_string()}),
        now,
    )
}

/// A participant's own filing of a conversation: archived (out of their inbox) or back. The
/// conversation itself does not change; a new message in it brings it back for everyone.
fn archive(
    conn: &dyn Sql,
    participant: ParticipantId,
    archived: bool,
    now: i64,
) -> Result<(), StoreError> {
    let r = conn
        .row(
            &format!(
                "SELECT thread_id, archived_at FROM participants
                 WHERE id = $1 AND revoked_at IS NULL{}",
                conn.for_update()
            ),
            args![participant.0],
        )?
        .ok_or_else(|| StoreError::Invalid("not a participant of this conversation".into()))?;
    let (thread, was) = (r.int(0)?, r.opt_int(1)?.is_some());
    if was == archived {
        return Ok(());
    }
    conn.exec(
        "UPDATE participants SET archived_at = $1 WHERE id = $2",
        args![archived.then_some(now), participant.0],
    )?;
    event(
        conn,
        Some(ThreadId(thread)),
        if archived {
            "thread.archived"
        } else {
            "thread.unarchived"
        },
        serde_json::json!({"participant_id": participant.to_string()}),
        now,
    )
}
