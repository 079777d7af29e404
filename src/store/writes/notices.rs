//! Content-free notices to staff and to verified senders, and the record of notifications
//! cancelled before they went out.

use super::counters::next_in;
use super::events::event;
use crate::domain::{NoticeReason, NotificationId, ParticipantId, ThreadId};
use crate::store::sql::{Sql, args};
use crate::store::{Notice, StoreError};

/// Queues a content-free notice about a recipient to every active staff participant of
/// `thread`.
pub(crate) fn notify_staff(
    conn: &dyn Sql,
    thread: ThreadId,
    why: NoticeReason,
    now: i64,
) -> Result<(), StoreError> {
    let staff: Vec<i64> = conn.ints(
        "SELECT id FROM participants
             WHERE thread_id = $1 AND role = 'staff' AND revoked_at IS NULL",
        args![thread.0],
    )?;
    for s in staff {
        let notice = Notice {
            participant: ParticipantId(s),
            reason: why,
            per_hour: 0,
        };
        queue_notice(conn, thread, notice, now)?;
    }
    Ok(())
}

/// Records each notification cancelled before it went out: a change of status, told like any
/// other (and to webhooks).
pub(crate) fn cancelled_events(
    conn: &dyn Sql,
    thread: ThreadId,
    notifications: &[i64],
    now: i64,
) -> Result<(), StoreError> {
    for id in notifications {
        event(
            conn,
            Some(thread),
            "notification.cancelled",
            serde_json::json!({"notification_id": NotificationId(*id).to_string()}),
            now,
        )?;
    }
    Ok(())
}

/// Queues a content-free notice to a verified participant, or records it as suppressed with
/// why: [`crate::domain::notice`] decides, from how many notices went to the same person (their
/// address, whichever conversation) within the last hour. Returns whether one was queued.
pub(crate) fn queue_notice(
    conn: &dyn Sql,
    thread: ThreadId,
    notice: Notice,
    now: i64,
) -> Result<bool, StoreError> {
    let row = conn
        .row(
            "SELECT p.address, t.mode, p.revoked_at,
                    (SELECT COUNT(*) FROM people WHERE address = p.address
                                                   AND notifications = 'off')
             FROM participants p JOIN threads t ON t.id = p.thread_id
             WHERE p.id = $1",
            args![notice.participant.0],
        )?
        .ok_or_else(|| StoreError::Corrupt(format!("no participant {}", notice.participant.0)))?;
    let (address, mode) = (row.text(0)?, row.text(1)?);
    let (revoked, opted_out) = (row.opt_int(2)?.is_some(), row.int(3)? > 0);
    if revoked {
        return Ok(false);
    }
    let person_kinds = NoticeReason::ALL
        .iter()
        .filter(|r| !crate::domain::notice::about_a_recipient(**r))
        .map(|r| format!("'{}'", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sent = conn
        .row(
            &format!(
                "SELECT COUNT(*) FROM outbox
                 WHERE recipient = $1 AND kind IN ({person_kinds}) AND status <> 'suppressed'
                   AND created_at > $2"
            ),
            args![&address, now - crate::domain::notice::WINDOW_SECS],
        )?
        .map_or(Ok(0), |r| r.int(0))?;
    let decision = crate::domain::notice::decide(
        notice.reason,
        u64::try_from(sent).unwrap_or(0),
        notice.per_hour,
        opted_out,
    );
    let (status, why) = match decision {
        crate::domain::notice::Decision::Send => ("queued", None),
        crate::domain::notice::Decision::Suppress(why) => ("suppressed", Some(why)),
    };
    let seq = next_in(conn, "outbox")?;
    conn.exec(
        "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                             mode, next_attempt_at, created_at, status, last_error)
         VALUES ($1, $10, $2, NULL, $3, $4, $5, $6, $7, $7, $8, $9)",
        args![
            NotificationId::random().0,
            thread.0,
            notice.participant.0,
            &address,
            notice.reason.as_str(),
            &mode,
            now,
            status,
            why,
            seq
        ],
    )?;
    Ok(status == "queued")
}
