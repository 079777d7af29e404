//! Threads, their participants and their messages: opening a conversation, posting, closing,
//! adding and removing people. Every new message — a staff post, a new thread, a filed reply —
//! goes through [`insert_message`], which also queues its notifications.

use super::counters::next_in;
use super::events::event;
use super::notices::cancelled_events;
use crate::domain::fanout::{self, Reader};
use crate::domain::{
    Address, Mode, NotificationId, ParticipantId, PersonId, PersonKind, Role, ThreadId,
};
use crate::store::rows::parse;
use crate::store::sealing::{Answers, SealedParticipant, SealedPost, SealedThread};
use crate::store::sql::{Sql, args};
use crate::store::{Posted, SealedMessage, StoreError};

pub(crate) fn create_thread(
    conn: &dyn Sql,
    t: &SealedThread,
    now: i64,
) -> Result<Posted, StoreError> {
    let seq = next_in(conn, "threads")?;
    conn.exec(
        "INSERT INTO threads (id, mode, key_id, wrapped_key, subject, created_at, last_activity_at,
                              seq, shared)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)",
        args![
            t.thread.0,
            t.mode.as_str(),
            i64::from(t.wrapped.key_id),
            &t.wrapped.sealed,
            &t.subject,
            now,
            seq,
            t.shared
        ],
    )?;
    for p in &t.participants {
        insert_participant(conn, t.thread, p, now)?;
    }
    event(
        conn,
        Some(t.thread),
        "thread.created",
        serde_json::json!({"mode": t.mode.as_str(), "participants": t.participants.len(),
                           "shared": t.shared}),
        now,
    )?;
    insert_message(conn, t.thread, t.mode, &t.first, now)
}

/// A participant's row, and their person in the directory. Everyone in a thread is in the
/// directory: a new address becomes a person (staff if they write as staff, else a patient)
/// whom staff may describe later.
pub(crate) fn insert_participant(
    conn: &dyn Sql,
    thread: ThreadId,
    p: &SealedParticipant,
    now: i64,
) -> Result<(), StoreError> {
    let kind = if p.role == Role::Staff {
        PersonKind::Staff
    } else {
        PersonKind::Patient
    };
    conn.exec(
        "INSERT INTO people (id, address, created_at, updated_at, kind)
         VALUES ($1, $2, $3, $3, $4) ON CONFLICT (address) DO NOTHING",
        args![PersonId::random().0, p.address.as_str(), now, kind.as_str()],
    )?;
    conn.exec(
        "INSERT INTO participants (id, thread_id, address, display_name_sealed, role,
                                   created_at, person_id)
         VALUES ($1, $2, $3, $4, $5, $6, (SELECT id FROM people WHERE address = $3))",
        args![
            p.id.0,
            thread.0,
            p.address.as_str(),
            &p.name,
            p.role.as_str(),
            now
        ],
    )?;
    Ok(())
}

pub(crate) fn post(conn: &dyn Sql, p: &SealedPost, now: i64) -> Result<Posted, StoreError> {
    let (mode, status) = thread_state(conn, p.thread)?;
    if status == "closed" {
        return Err(StoreError::ThreadClosed(p.thread));
    }
    let author: ParticipantId = conn
        .int(
            "SELECT id FROM participants WHERE thread_id = $1 AND address = $2 AND revoked_at IS NULL",
            args![p.thread.0, p.from.as_str()],
        )?
        .map(ParticipantId)
        .ok_or_else(|| StoreError::NotParticipant {
            thread: p.thread,
            address: p.from.clone(),
        })?;
    let message = p.message.by(author);
    insert_message(conn, p.thread, mode, &message, now)
}

/// A thread's mode and status; the thread's row stays locked until the operation ends
/// (PostgreSQL: a post and a closing on two instances take turns).
pub(crate) fn thread_state(conn: &dyn Sql, thread: ThreadId) -> Result<(Mode, String), StoreError> {
    let r = conn
        .row(
            &format!(
                "SELECT mode, status FROM threads WHERE id = $1{}",
                conn.for_update()
            ),
            args![thread.0],
        )?
        .ok_or(StoreError::UnknownThread(thread))?;
    Ok((crate::store::rows::parse("mode", &r.text(0)?)?, r.text(1)?))
}

/// The message of this thread a new message answers, if what it names is one (a message
/// still there, or a notification that carried one).
pub(crate) fn answered_message(
    conn: &dyn Sql,
    thread: ThreadId,
    answers: Answers,
) -> Result<Option<i64>, StoreError> {
    let (sql, id) = match answers {
        Answers::Nothing => return Ok(None),
        Answers::Message(m) => (
            "SELECT id FROM messages WHERE id = $1 AND thread_id = $2 AND cancelled_at IS NULL",
            m.0,
        ),
        Answers::Notification(n) => (
            "SELECT m.id FROM outbox o JOIN messages m ON m.id = o.message_id
             WHERE o.id = $1 AND o.thread_id = $2 AND m.cancelled_at IS NULL",
            n.0,
        ),
    };
    conn.int(sql, args![id, thread.0])
}

/// Inserts a sealed message and queues one notification per other active participant, with
/// the event. Every new message goes through here: staff posts, new threads and filed replies.
pub(crate) fn insert_message(
    conn: &dyn Sql,
    thread: ThreadId,
    mode: Mode,
    message: &SealedMessage,
    now: i64,
) -> Result<Posted, StoreError> {
    // The thread's row carries its message counter: bumping it orders the message and, on an
    // engine with row locks, holds the thread until the commit.
    let seq = conn
        .row(
            "UPDATE threads SET message_seq = message_seq + 1, last_activity_at = $1
             WHERE id = $2 RETURNING message_seq",
            args![now, thread.0],
        )?
        .ok_or(StoreError::UnknownThread(thread))?
        .int(0)?;
    let answers = answered_message(conn, thread, message.answers)?;
    conn.exec(
        "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at, auth,
                               answers_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        args![
            message.id.0,
            thread.0,
            seq,
            message.author.0,
            message.body(),
            message.via.as_str(),
            now,
            &message.auth,
            answers
        ],
    )?;
    unarchive_all(conn, thread, now)?;
    let readers = readers(conn, thread)?;
    let addresses: std::collections::HashMap<i64, String> = conn
        .rows(
            "SELECT id, address FROM participants WHERE thread_id = $1",
            args![thread.0],
        )?
        .iter()
        .map(|r| Ok((r.int(0)?, r.text(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let notifications =
        queue_notifications(conn, thread, mode, message, &addresses, &readers, now)?;
    event(
        conn,
        Some(thread),
        "message.posted",
        serde_json::json!({
            "message_id": message.id.to_string(),
            "via": message.via.as_str(),
            "notifications": notifications.len(),
        }),
        now,
    )?;
    Ok(Posted {
        thread_id: thread,
        message_id: message.id,
        notifications,
    })
}

/// Archiving is a participant's own filing: a new message brings the conversation back into
/// everyone's inbox.
fn unarchive_all(conn: &dyn Sql, thread: ThreadId, now: i64) -> Result<(), StoreError> {
    let unarchived: Vec<i64> = conn.ints(
        "UPDATE participants SET archived_at = NULL
             WHERE thread_id = $1 AND archived_at IS NOT NULL RETURNING id",
        args![thread.0],
    )?;
    for p in unarchived {
        event(
            conn,
            Some(thread),
            "thread.unarchived",
            serde_json::json!({"participant_id": ParticipantId(p).to_string(), "by": "new-message"}),
            now,
        )?;
    }
    Ok(())
}

/// What the fan-out needs to know of each participant of `thread` (see [`fanout::plan`]).
fn readers(conn: &dyn Sql, thread: ThreadId) -> Result<Vec<Reader>, StoreError> {
    conn.rows(
        "SELECT p.id, p.role, p.revoked_at, pe.convenience, pe.notifications
         FROM participants p LEFT JOIN people pe ON pe.address = p.address
         WHERE p.thread_id = $1 ORDER BY p.address",
        args![thread.0],
    )?
    .iter()
    .map(|r| {
        Ok(Reader {
            participant: ParticipantId(r.int(0)?),
            role: parse("role", &r.text(1)?)?,
            removed: r.opt_int(2)?.is_some(),
            consents: r.opt_text(3)?.as_deref() == Some("yes"),
            notifications_off: r.opt_text(4)?.as_deref() == Some("off"),
        })
    })
    .collect::<Result<_, StoreError>>()
}

/// One outbox row per notification the fan-out plans for `message`.
fn queue_notifications(
    conn: &dyn Sql,
    thread: ThreadId,
    mode: Mode,
    message: &SealedMessage,
    addresses: &std::collections::HashMap<i64, String>,
    readers: &[Reader],
    now: i64,
) -> Result<Vec<NotificationId>, StoreError> {
    let mut notifications = Vec::new();
    for planned in fanout::plan(mode, message.author, readers) {
        let n = NotificationId::random();
        let seq = next_in(conn, "outbox")?;
        conn.exec(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                                 mode, next_attempt_at, created_at, status)
             VALUES ($1, $2, $3, $4, $5, $6, 'message', $7, $8, $8, $9)",
            args![
                n.0,
                seq,
                thread.0,
                message.id.0,
                planned.participant.0,
                addresses.get(&planned.participant.0).map(String::as_str),
                planned.mode.as_str(),
                now,
                if planned.suppressed {
                    "suppressed"
                } else {
                    "queued"
                }
            ],
        )?;
        notifications.push(n);
    }
    Ok(notifications)
}

/// Closes (`status` "closed") or re-opens ("open") a thread; doing it twice changes nothing
/// and records nothing more.
pub(crate) fn close_thread(
    conn: &dyn Sql,
    thread: ThreadId,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    let (_, current) = thread_state(conn, thread)?;
    if current == status {
        return Ok(());
    }
    conn.exec(
        "UPDATE threads SET status = $1 WHERE id = $2",
        args![status, thread.0],
    )?;
    let kind = if status == "closed" {
        "thread.closed"
    } else {
        "thread.reopened"
    };
    event(conn, Some(thread), kind, serde_json::json!({}), now)
}

pub(crate) fn remove_participant(
    conn: &dyn Sql,
    thread: ThreadId,
    address: &Address,
    now: i64,
) -> Result<u64, StoreError> {
    let participant = conn
        .row(
            "UPDATE participants SET revoked_at = $1
             WHERE thread_id = $2 AND address = $3 AND revoked_at IS NULL
             RETURNING id",
            args![now, thread.0, address.as_str()],
        )?
        .ok_or_else(|| StoreError::NotParticipant {
            thread,
            address: address.clone(),
        })?
        .int(0)?;
    let cancelled_ids: Vec<i64> = conn.ints(
        "UPDATE outbox SET status = 'cancelled', last_error = 'participant removed',
                    next_attempt_at = $1
             WHERE participant_id = $2 AND status IN ('queued', 'deferred')
             RETURNING id",
        args![now, participant],
    )?;
    cancelled_events(conn, thread, &cancelled_ids, now)?;
    let cancelled = cancelled_ids.len() as u64;
    event(
        conn,
        Some(thread),
        "participant.removed",
        serde_json::json!({
            "participant_id": ParticipantId(participant).to_string(),
            "notifications_cancelled": cancelled,
        }),
        now,
    )?;
    Ok(cancelled)
}

/// Adds a participant to an open thread (making them a person in the directory if they are
/// new). Someone removed from the thread cannot be added back: their row, and the tokens bound
/// to it, stay revoked; a new thread is the way to write to them again.
pub(crate) fn add_participant(
    conn: &dyn Sql,
    thread: ThreadId,
    p: &SealedParticipant,
    shared: bool,
    now: i64,
) -> Result<(), StoreError> {
    let (_, status) = thread_state(conn, thread)?;
    if status == "closed" {
        return Err(StoreError::ThreadClosed(thread));
    }
    let existing: Option<Option<i64>> = conn
        .row(
            "SELECT revoked_at FROM participants WHERE thread_id = $1 AND address = $2",
            args![thread.0, p.address.as_str()],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?;
    if let Some(revoked) = existing {
        return Err(StoreError::AlreadyParticipant {
            thread,
            address: p.address.clone(),
            removed: revoked.is_some(),
        });
    }
    // Someone outside the practice joining another makes the conversation shared, which must
    // be meant (they would read each other's words).
    let r = conn
        .row(
            "SELECT (SELECT COUNT(*) FROM participants p
                     WHERE p.thread_id = $1 AND p.revoked_at IS NULL AND p.role = 'recipient'
                       AND NOT EXISTS (SELECT 1 FROM people pe WHERE pe.address = p.address
                                                                 AND pe.kind = 'staff')),
                    CASE WHEN $2 = 'staff' OR EXISTS (SELECT 1 FROM people WHERE address = $3
                                                                         AND kind = 'staff')
                         THEN 1 ELSE 0 END",
            args![thread.0, p.role.as_str(), p.address.as_str()],
        )?
        .ok_or_else(|| StoreError::Corrupt("a count returned no row".into()))?;
    let (outside, newcomer_is_staff) = (r.int(0)?, r.int(1)? != 0);
    let becomes_shared = crate::domain::conversation::may_add(
        usize::try_from(outside).unwrap_or(0),
        newcomer_is_staff,
        shared,
    )
    .map_err(StoreError::WouldShare)?;
    insert_participant(conn, thread, p, now)?;
    if becomes_shared {
        conn.exec(
            "UPDATE threads SET shared = 1 WHERE id = $1",
            args![thread.0],
        )?;
    }
    event(
        conn,
        Some(thread),
        "participant.added",
        serde_json::json!({
            "participant_id": p.id.to_string(),
            "role": p.role.as_str(),
            "shared": becomes_shared,
        }),
        now,
    )
}

/// A participant's address in its normal form (schema version 3), and their person with it:
/// the person takes the normal form too, or, when someone already has it, the participant
/// joins them and the person left with no one (made by the migration, nothing recorded) goes.
pub(crate) fn set_address(
    conn: &dyn Sql,
    id: ParticipantId,
    address: &Address,
) -> Result<(), StoreError> {
    let old_person: Option<i64> = conn
        .row(
            "SELECT person_id FROM participants WHERE id = $1",
            args![id.0],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?
        .flatten();
    conn.exec(
        "UPDATE participants SET address = $1 WHERE id = $2",
        args![address.as_str(), id.0],
    )?;
    conn.exec(
        "UPDATE people SET address = $1 WHERE id = $2
           AND NOT EXISTS (SELECT 1 FROM people WHERE address = $1)",
        args![address.as_str(), old_person],
    )?;
    conn.exec(
        "UPDATE participants SET person_id = (SELECT id FROM people WHERE address = $1)
         WHERE id = $2",
        args![address.as_str(), id.0],
    )?;
    conn.exec(
        "DELETE FROM people WHERE id = $1 AND address <> $2
           AND wrapped_key IS NULL AND convenience IS NULL
           AND NOT EXISTS (SELECT 1 FROM participants WHERE person_id = $1)",
        args![old_person, address.as_str()],
    )?;
    Ok(())
}

/// Display names written in clear before schema version 3, moved into their sealed column.
pub(crate) fn seal_names(
    conn: &dyn Sql,
    names: &[(ParticipantId, Vec<u8>)],
) -> Result<(), StoreError> {
    for (id, sealed) in names {
        conn.exec(
            "UPDATE participants SET display_name_sealed = $1, display_name = NULL WHERE id = $2",
            args![sealed, id.0],
        )?;
    }
    Ok(())
}
