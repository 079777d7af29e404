//! Threads, their participants and their messages: opening a conversation, posting, closing,
//! adding and removing people. Every new message — a staff post, a new thread, a filed reply —
//! goes through [`insert_message`], which also queues its notifications.

use crate::domain::fanout::{self, Reader};
use crate::domain::{
    Address, Mode, NotificationId, ParticipantId, PersonId, PersonKind, Role, ThreadId,
};
use crate::store::rows::parse;
use crate::store::sealing::{Answers, SealedParticipant, SealedPost, SealedThread};
use crate::store::writes::counters::next_in;
use crate::store::writes::events::event;
use crate::store::writes::notices::cancelled_events;
use crate::store::{Posted, SealedMessage, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn create_thread(
    conn: &Connection,
    t: &SealedThread,
    now: i64,
) -> Result<Posted, StoreError> {
    conn.prepare_cached(
        "INSERT INTO threads (id, mode, key_id, wrapped_key, subject, created_at, last_activity_at,
                              seq, shared)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8)",
    )?
    .execute(params![
        t.thread.0,
        t.mode.as_str(),
        i64::from(t.wrapped.key_id),
        t.wrapped.sealed,
        t.subject,
        now,
        next_in(conn, "threads")?,
        t.shared
    ])?;
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
pub(super) fn insert_participant(
    conn: &Connection,
    thread: ThreadId,
    p: &SealedParticipant,
    now: i64,
) -> Result<(), StoreError> {
    let kind = if p.role == Role::Staff {
        PersonKind::Staff
    } else {
        PersonKind::Patient
    };
    conn.prepare_cached(
        "INSERT INTO people (id, address, created_at, updated_at, kind)
         VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT (address) DO NOTHING",
    )?
    .execute(params![
        PersonId::random().0,
        p.address.as_str(),
        now,
        kind.as_str()
    ])?;
    conn.prepare_cached(
        "INSERT INTO participants (id, thread_id, address, display_name_sealed, role,
                                   created_at, person_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT id FROM people WHERE address = ?3))",
    )?
    .execute(params![
        p.id.0,
        thread.0,
        p.address.as_str(),
        p.name,
        p.role.as_str(),
        now
    ])?;
    Ok(())
}

pub(super) fn post(conn: &Connection, p: &SealedPost, now: i64) -> Result<Posted, StoreError> {
    let (mode, status) = thread_state(conn, p.thread)?;
    if status == "closed" {
        return Err(StoreError::ThreadClosed(p.thread));
    }
    let author: ParticipantId = conn
        .prepare_cached(
            "SELECT id FROM participants WHERE thread_id = ?1 AND address = ?2 AND revoked_at IS NULL",
        )?
        .query_row(params![p.thread.0, p.from.as_str()], |r| r.get(0))
        .optional()?
        .map(ParticipantId)
        .ok_or_else(|| StoreError::NotParticipant {
            thread: p.thread,
            address: p.from.clone(),
        })?;
    let message = p.message.by(author);
    insert_message(conn, p.thread, mode, &message, now)
}

/// A thread's mode and status.
pub(super) fn thread_state(
    conn: &Connection,
    thread: ThreadId,
) -> Result<(Mode, String), StoreError> {
    let (mode, status): (String, String) = conn
        .prepare_cached("SELECT mode, status FROM threads WHERE id = ?1")?
        .query_row([thread.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::UnknownThread(thread))?;
    Ok((crate::store::rows::parse("mode", &mode)?, status))
}

/// The message of this thread a new message answers, if what it names is one (a message
/// still there, or a notification that carried one).
pub(super) fn answered_message(
    conn: &Connection,
    thread: ThreadId,
    answers: Answers,
) -> Result<Option<i64>, StoreError> {
    let (sql, id) = match answers {
        Answers::Nothing => return Ok(None),
        Answers::Message(m) => (
            "SELECT id FROM messages WHERE id = ?1 AND thread_id = ?2 AND cancelled_at IS NULL",
            m.0,
        ),
        Answers::Notification(n) => (
            "SELECT m.id FROM outbox o JOIN messages m ON m.id = o.message_id
             WHERE o.id = ?1 AND o.thread_id = ?2 AND m.cancelled_at IS NULL",
            n.0,
        ),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row(params![id, thread.0], |r| r.get(0))
        .optional()?)
}

/// Inserts a sealed message and queues one notification per other active participant, with
/// the event. Every new message goes through here: staff posts, new threads and filed replies.
pub(super) fn insert_message(
    conn: &Connection,
    thread: ThreadId,
    mode: Mode,
    message: &SealedMessage,
    now: i64,
) -> Result<Posted, StoreError> {
    // The thread's row carries its message counter: bumping it orders the message and, on an
    // engine with row locks, holds the thread until the commit.
    let seq: i64 = conn
        .prepare_cached(
            "UPDATE threads SET message_seq = message_seq + 1, last_activity_at = ?1
             WHERE id = ?2 RETURNING message_seq",
        )?
        .query_row(params![now, thread.0], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::UnknownThread(thread))?;
    conn.prepare_cached(
        "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at, auth,
                               answers_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        message.id.0,
        thread.0,
        seq,
        message.author.0,
        message.body(),
        message.via.as_str(),
        now,
        message.auth,
        answered_message(conn, thread, message.answers)?
    ])?;
    unarchive_all(conn, thread, now)?;
    let readers = readers(conn, thread)?;
    let addresses: std::collections::HashMap<i64, String> = conn
        .prepare_cached("SELECT id, address FROM participants WHERE thread_id = ?1")?
        .query_map([thread.0], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
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
fn unarchive_all(conn: &Connection, thread: ThreadId, now: i64) -> Result<(), StoreError> {
    let unarchived: Vec<i64> = conn
        .prepare_cached(
            "UPDATE participants SET archived_at = NULL
             WHERE thread_id = ?1 AND archived_at IS NOT NULL RETURNING id",
        )?
        .query_map([thread.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
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
fn readers(conn: &Connection, thread: ThreadId) -> Result<Vec<Reader>, StoreError> {
    conn.prepare_cached(
        "SELECT p.id, p.role, p.revoked_at IS NOT NULL,
                    COALESCE(pe.convenience = 'yes', 0), COALESCE(pe.notifications = 'off', 0)
             FROM participants p LEFT JOIN people pe ON pe.address = p.address
             WHERE p.thread_id = ?1 ORDER BY p.address",
    )?
    .query_map([thread.0], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
        ))
    })?
    .map(|row| {
        let (id, role, removed, consents, notifications_off) = row?;
        Ok(Reader {
            participant: ParticipantId(id),
            role: parse("role", &role)?,
            removed,
            consents,
            notifications_off,
        })
    })
    .collect::<Result<_, StoreError>>()
}

/// One outbox row per notification the fan-out plans for `message`.
fn queue_notifications(
    conn: &Connection,
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
        conn.prepare_cached(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                                 mode, next_attempt_at, created_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'message', ?7, ?8, ?8, ?9)",
        )?
        .execute(params![
            n.0,
            next_in(conn, "outbox")?,
            thread.0,
            message.id.0,
            planned.participant.0,
            addresses.get(&planned.participant.0),
            planned.mode.as_str(),
            now,
            if planned.suppressed {
                "suppressed"
            } else {
                "queued"
            }
        ])?;
        notifications.push(n);
    }
    Ok(notifications)
}

/// Closes (`status` "closed") or re-opens ("open") a thread; doing it twice changes nothing
/// and records nothing more.
pub(super) fn close_thread(
    conn: &Connection,
    thread: ThreadId,
    status: &str,
    now: i64,
) -> Result<(), StoreError> {
    let current: Option<String> = conn
        .prepare_cached("SELECT status FROM threads WHERE id = ?1")?
        .query_row([thread.0], |r| r.get(0))
        .optional()?;
    let Some(current) = current else {
        return Err(StoreError::UnknownThread(thread));
    };
    if current == status {
        return Ok(());
    }
    conn.prepare_cached("UPDATE threads SET status = ?1 WHERE id = ?2")?
        .execute(params![status, thread.0])?;
    let kind = if status == "closed" {
        "thread.closed"
    } else {
        "thread.reopened"
    };
    event(conn, Some(thread), kind, serde_json::json!({}), now)
}

pub(super) fn remove_participant(
    conn: &Connection,
    thread: ThreadId,
    address: &Address,
    now: i64,
) -> Result<u64, StoreError> {
    let participant: i64 = conn
        .prepare_cached(
            "UPDATE participants SET revoked_at = ?1
             WHERE thread_id = ?2 AND address = ?3 AND revoked_at IS NULL
             RETURNING id",
        )?
        .query_row(params![now, thread.0, address.as_str()], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotParticipant {
            thread,
            address: address.clone(),
        })?;
    let cancelled_ids: Vec<i64> = conn
        .prepare_cached(
            "UPDATE outbox SET status = 'cancelled', last_error = 'participant removed',
                    next_attempt_at = ?1
             WHERE participant_id = ?2 AND status IN ('queued', 'deferred')
             RETURNING id",
        )?
        .query_map(params![now, participant], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
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
pub(super) fn add_participant(
    conn: &Connection,
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
        .prepare_cached(
            "SELECT revoked_at FROM participants WHERE thread_id = ?1 AND address = ?2",
        )?
        .query_row(params![thread.0, p.address.as_str()], |r| r.get(0))
        .optional()?;
    if let Some(revoked) = existing {
        return Err(StoreError::AlreadyParticipant {
            thread,
            address: p.address.clone(),
            removed: revoked.is_some(),
        });
    }
    // Someone outside the practice joining another makes the conversation shared, which must
    // be meant (they would read each other's words).
    let (outside, newcomer_is_staff): (i64, bool) = conn
        .prepare_cached(
            "SELECT (SELECT COUNT(*) FROM participants p
                     WHERE p.thread_id = ?1 AND p.revoked_at IS NULL AND p.role = 'recipient'
                       AND NOT EXISTS (SELECT 1 FROM people pe WHERE pe.address = p.address
                                                                 AND pe.kind = 'staff')),
                    ?2 = 'staff' OR EXISTS (SELECT 1 FROM people WHERE address = ?3
                                                                   AND kind = 'staff')",
        )?
        .query_row(
            params![thread.0, p.role.as_str(), p.address.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    let becomes_shared = crate::domain::conversation::may_add(
        usize::try_from(outside).unwrap_or(0),
        newcomer_is_staff,
        shared,
    )
    .map_err(StoreError::WouldShare)?;
    insert_participant(conn, thread, p, now)?;
    if becomes_shared {
        conn.prepare_cached("UPDATE threads SET shared = 1 WHERE id = ?1")?
            .execute([thread.0])?;
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
pub(super) fn set_address(
    conn: &Connection,
    id: ParticipantId,
    address: &Address,
) -> Result<(), StoreError> {
    let old_person: Option<i64> = conn
        .prepare_cached("SELECT person_id FROM participants WHERE id = ?1")?
        .query_row([id.0], |r| r.get(0))
        .optional()?
        .flatten();
    conn.prepare_cached("UPDATE participants SET address = ?1 WHERE id = ?2")?
        .execute(params![address.as_str(), id.0])?;
    conn.prepare_cached(
        "UPDATE people SET address = ?1 WHERE id = ?2
           AND NOT EXISTS (SELECT 1 FROM people WHERE address = ?1)",
    )?
    .execute(params![address.as_str(), old_person])?;
    conn.prepare_cached(
        "UPDATE participants SET person_id = (SELECT id FROM people WHERE address = ?1)
         WHERE id = ?2",
    )?
    .execute(params![address.as_str(), id.0])?;
    conn.prepare_cached(
        "DELETE FROM people WHERE id = ?1 AND address <> ?2
           AND wrapped_key IS NULL AND convenience IS NULL
           AND NOT EXISTS (SELECT 1 FROM participants WHERE person_id = ?1)",
    )?
    .execute(params![old_person, address.as_str()])?;
    Ok(())
}

/// Display names written in clear before schema version 3, moved into their sealed column.
pub(super) fn seal_names(
    conn: &Connection,
    names: &[(ParticipantId, Vec<u8>)],
) -> Result<(), StoreError> {
    for (id, sealed) in names {
        conn.prepare_cached(
            "UPDATE participants SET display_name_sealed = ?1, display_name = NULL WHERE id = ?2",
        )?
        .execute(params![sealed, id.0])?;
    }
    Ok(())
}
