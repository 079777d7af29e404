//! Inbound mail, decided: filed into its thread, held for staff, or only recorded in the
//! ledger; and what a bounce or a complaint changes.

use super::events::event;
use super::notices::{notify_staff, queue_notice};
use super::people::set_consent;
use super::threads::{insert_message, thread_state};
use crate::domain::consent::{self, Withdrawal};
use crate::domain::{Address, LedgerOutcome, NoticeReason, NotificationId, ThreadId};
use crate::store::rows::parse;
use crate::store::sql::{Sql, Value, args};
use crate::store::{
    Committed, Consent, Inbound, InboundAction, Notice, Release, SealedHeld, SealedMessage,
    StoreError,
};

/// One decided inbound message.
pub(crate) fn inbound(conn: &dyn Sql, item: &Inbound, now: i64) -> Result<Committed, StoreError> {
    match &item.action {
        InboundAction::File {
            message,
            raw,
            release,
        } => file(conn, item, message, &raw.0, release.as_ref(), now),
        InboundAction::Hold {
            held,
            notice,
            limits,
        } => hold(conn, item, held, *notice, limits, now),
        InboundAction::Record {
            outcome,
            reason,
            notice,
        } => {
            if *outcome != LedgerOutcome::Duplicate && received_before(conn, item)? {
                ledger(conn, item, LedgerOutcome::Duplicate, None, None, None)?;
                return Ok(Committed::Duplicate);
            }
            ledger(conn, item, *outcome, Some(reason), None, None)?;
            let notice_queued = match (notice, item.thread) {
                (Some(n), Some(thread)) => queue_notice(conn, thread, *n, now)?,
                _ => false,
            };
            event(
                conn,
                item.thread,
                &format!("inbound.{}", outcome.as_str()),
                serde_json::json!({"reason": reason, "door": item.door.as_str(), "notice_queued": notice_queued}),
                now,
            )?;
            Ok(Committed::Recorded { notice_queued })
        }
        InboundAction::DeliveryStatus {
            notification,
            failed,
            verified,
            complaint,
            detail,
        } => {
            // Only a report that reached the notification's own bounce address with a null
            // sender is evidence; anyone can write a report naming a Message-ID.
            if *failed && *verified {
                conn.exec(
                    "UPDATE outbox SET status = 'bounced', last_error = $1
                     WHERE id = $2 AND status IN ('sent', 'queued', 'deferred')",
                    args![detail, notification.0],
                )?;
                revert_to_secure(conn, *notification, *complaint, now)?;
            }
            ledger(
                conn,
                item,
                LedgerOutcome::DeliveryStatus,
                Some(detail),
                None,
                None,
            )?;
            let kind = match (failed, verified) {
                (_, false) => "notification.delivery-report-unverified",
                (true, true) => "notification.bounced",
                (false, true) => "notification.delivery-report",
            };
            event(
                conn,
                item.thread,
                kind,
                serde_json::json!({"notification_id": notification.to_string(), "detail": detail}),
                now,
            )?;
            Ok(Committed::StatusUpdated {
                notification: *notification,
            })
        }
    }
}

/// Whether this message's Message-ID was filed in its thread before, or is held there waiting
/// for a decision: then it is a duplicate, whatever else would become of it. Checked inside
/// the commit, so copies arriving together (either door, one batch) are settled in order.
pub(crate) fn received_before(conn: &dyn Sql, item: &Inbound) -> Result<bool, StoreError> {
    let (Some(thread), Some(id)) = (item.thread, &item.header_message_id) else {
        return Ok(false);
    };
    conn.exists(
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM inbound WHERE thread_id = $1
                                                         AND header_message_id = $2
                                                         AND filed_message_id IS NOT NULL)
                     OR EXISTS (SELECT 1 FROM held WHERE thread_id = $1
                                                     AND header_message_id = $2
                                                     AND status = 'held')",
        args![thread.0, id],
    )
}

/// Puts a message in the held queue: the sealed row, its ledger row, an event, and perhaps a
/// content-free notice to its (verified) participant — unless it is a copy of one filed or
/// held there already.
pub(crate) fn hold(
    conn: &dyn Sql,
    item: &Inbound,
    held: &SealedHeld,
    notice: Option<Notice>,
    limits: &crate::domain::held::Limits,
    now: i64,
) -> Result<Committed, StoreError> {
    if received_before(conn, item)? {
        ledger(conn, item, LedgerOutcome::Duplicate, None, None, None)?;
        return Ok(Committed::Duplicate);
    }
    let (key_id, wrapped, envelope, raw, size) = held.columns();
    if let Some(quota) = held_quota_full(conn, item, held, limits, size, now)? {
        return Ok(Committed::HeldFull(quota));
    }
    conn.exec(
        "INSERT INTO held (id, received_at, door, reason, thread_id, participant_id,
                           header_message_id, size, key_id, wrapped_key, envelope, raw, auth,
                           client, sender_domain)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        args![
            item.id,
            item.received_at,
            item.door.as_str(),
            held.reason.as_str(),
            item.thread.map(|t| t.0),
            held.participant.map(|p| p.0),
            &item.header_message_id,
            size,
            key_id,
            wrapped,
            envelope,
            raw,
            &held.auth,
            &held.client,
            &held.sender_domain
        ],
    )?;
    ledger(
        conn,
        item,
        LedgerOutcome::Held,
        Some(held.reason.as_str()),
        None,
        None,
    )?;
    let notice_queued = match (notice, item.thread) {
        (Some(n), Some(thread)) => queue_notice(conn, thread, n, now)?,
        _ => false,
    };
    event(
        conn,
        item.thread,
        "inbound.held",
        serde_json::json!({
            "held_id": format!("{:016x}", item.id),
            "reason": held.reason.as_str(),
            "door": item.door.as_str(),
            "notice_queued": notice_queued,
        }),
        now,
    )?;
    Ok(Committed::Held { id: item.id })
}

/// Whether a quota of the held queue would be exceeded by this message (see
/// [`crate::domain::held`]); the first time a quota is found full for a source (in a day), the
/// audit trail and webhooks say so, and, for a reply address, the conversation's staff.
pub(crate) fn held_quota_full(
    conn: &dyn Sql,
    item: &Inbound,
    held: &SealedHeld,
    limits: &crate::domain::held::Limits,
    size: i64,
    now: i64,
) -> Result<Option<crate::domain::held::Quota>, StoreError> {
    use crate::domain::held::{Quota, Waiting, full};
    let count = |sql: &str, value: Value<'_>| -> Result<u64, StoreError> {
        conn.row(sql, &[value])?
            .map_or(Ok(0), |r| r.int(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let totals = conn
        .row(
            "SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM held
             WHERE status = 'held'",
            args![],
        )?
        .ok_or_else(|| StoreError::Corrupt("a count returned no row".into()))?;
    let (total, total_bytes) = (
        u64::try_from(totals.int(0)?).unwrap_or(0),
        u64::try_from(totals.int(1)?).unwrap_or(0),
    );
    let waiting = Waiting {
        from_client: held
            .client
            .as_ref()
            .map(|c| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND client = $1",
                    Value::from(c),
                )
            })
            .transpose()?,
        from_sender_domain: held
            .sender_domain
            .as_ref()
            .map(|d| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND sender_domain = $1",
                    Value::from(d),
                )
            })
            .transpose()?,
        for_reply_address: held
            .participant
            .map(|p| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND participant_id = $1",
                    Value::from(p.0),
                )
            })
            .transpose()?,
        total,
        total_bytes,
    };
    let Some(quota) = full(&waiting, limits, u64::try_from(size).unwrap_or(0)) else {
        return Ok(None);
    };
    let source = match quota {
        Quota::Client => held.client.clone().unwrap_or_default(),
        Quota::SenderDomain => held.sender_domain.clone().unwrap_or_default(),
        Quota::ReplyAddress => held.participant.map(|p| p.to_string()).unwrap_or_default(),
        Quota::Total => String::new(),
    };
    let first = conn
        .row(
            "INSERT INTO held_alerts (quota, source, at) VALUES ($1, $2, $3)
             ON CONFLICT (quota, source) DO UPDATE SET at = excluded.at
             WHERE held_alerts.at < excluded.at - 86400
             RETURNING at",
            args![quota.as_str(), &source, now],
        )?
        .is_some();
    if first {
        let thread = match quota {
            Quota::ReplyAddress => item.thread,
            _ => None,
        };
        event(
            conn,
            thread,
            "held.quota-reached",
            serde_json::json!({"quota": quota.as_str(), "door": item.door.as_str()}),
            now,
        )?;
        if let Some(thread) = thread {
            notify_staff(conn, thread, NoticeReason::HeldFull, now)?;
        }
    }
    Ok(Some(quota))
}

/// Files a reply (through [`insert_message`], like every new message) and its ledger row,
/// unless this Message-ID was filed in the thread before.
pub(crate) fn file(
    conn: &dyn Sql,
    item: &Inbound,
    message: &SealedMessage,
    raw: &[u8],
    release: Option<&Release>,
    now: i64,
) -> Result<Committed, StoreError> {
    let thread = item
        .thread
        .ok_or_else(|| StoreError::Invalid("a filing needs a thread".into()))?;
    let (mode, status) = thread_state(conn, thread)?;
    // Removal is immediate: a participant removed after their reply was checked at RCPT or
    // decided by the pipeline is refused here, where no removal can slip in between.
    let revoked = match conn.row(
        "SELECT revoked_at FROM participants WHERE id = $1 AND thread_id = $2",
        args![message.author.0, thread.0],
    )? {
        Some(r) => r.opt_int(0)?.is_some(),
        None => true,
    };
    if revoked {
        return Err(StoreError::Revoked(thread));
    }
    if let Some(release) = release {
        let updated = conn.exec(
            "UPDATE held SET status = 'released', decided_at = $1, decided_by = $2
             WHERE id = $3 AND status = 'held'",
            args![now, &release.by, release.held],
        )?;
        if updated == 0 {
            return Err(StoreError::HeldDecided(release.held));
        }
        event(
            conn,
            Some(thread),
            "held.released",
            serde_json::json!({"held_id": format!("{:016x}", release.held), "by": release.by}),
            now,
        )?;
    }
    if let Some(id) = &item.header_message_id {
        let filed_before = conn.exists(
            "SELECT 1 FROM inbound
             WHERE thread_id = $1 AND header_message_id = $2 AND filed_message_id IS NOT NULL",
            args![thread.0, id],
        )?;
        if filed_before {
            ledger(conn, item, LedgerOutcome::Duplicate, None, None, None)?;
            return Ok(Committed::Duplicate);
        }
    }
    if status == "closed" {
        return Err(StoreError::ThreadClosed(thread));
    }
    let posted = insert_message(conn, thread, mode, message, now)?;
    ledger(
        conn,
        item,
        LedgerOutcome::Filed,
        None,
        Some(message.id.0),
        Some(raw),
    )?;
    Ok(Committed::Filed(posted))
}

/// After a hard bounce or a complaint about a convenience notification: its recipient no
/// longer gets content by email (their consent is withdrawn, by "bounce" or "complaint"), and
/// the thread's staff get a content-free notice saying so.
pub(crate) fn revert_to_secure(
    conn: &dyn Sql,
    notification: NotificationId,
    complaint: bool,
    now: i64,
) -> Result<(), StoreError> {
    let row: Option<(i64, String, String, String, String)> = conn
        .row(
            "SELECT o.thread_id, p.address, o.mode, o.kind, p.role FROM outbox o
             JOIN participants p ON p.id = o.participant_id WHERE o.id = $1",
            args![notification.0],
        )?
        .map(|r| Ok::<_, StoreError>((r.int(0)?, r.text(1)?, r.text(2)?, r.text(3)?, r.text(4)?)))
        .transpose()?;
    let Some((thread, address, mode, kind, role)) = row else {
        return Ok(());
    };
    if !consent::withdrawn_by(
        kind == "message",
        parse("role", &role)?,
        parse("mode", &mode)?,
    ) {
        return Ok(());
    }
    let address = Address::parse(&address)
        .map_err(|_| StoreError::Corrupt(format!("address of notification {notification}")))?;
    let why = if complaint {
        Withdrawal::Complaint
    } else {
        Withdrawal::Bounce
    };
    set_consent(
        conn,
        &Consent {
            address,
            convenience: false,
            text: why.text().to_owned(),
            by: why.by().to_owned(),
        },
        now,
    )?;
    notify_staff(
        conn,
        ThreadId(thread),
        NoticeReason::RecipientMadeSecure,
        now,
    )
}

/// The inbound ledger row: every decided message leaves one (dedupe and audit). Only a filed
/// message keeps its raw copy here (`raw`, sealed); a held one keeps it in the held queue, and
/// nothing else is kept.
pub(crate) fn ledger(
    conn: &dyn Sql,
    item: &Inbound,
    outcome: LedgerOutcome,
    reason: Option<&str>,
    filed: Option<i64>,
    raw: Option<&[u8]>,
) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO inbound (id, received_at, door, thread_id, header_message_id,
                              imap_uidvalidity, imap_uid, outcome, reason, filed_message_id, raw)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        args![
            item.id,
            item.received_at,
            item.door.as_str(),
            item.thread.map(|t| t.0),
            &item.header_message_id,
            item.imap.map(|i| i.0),
            item.imap.map(|i| i.1),
            outcome.as_str(),
            reason,
            filed,
            raw,
        ],
    )?;
    Ok(())
}

/// Rejects a held message: it stays listed, for the audit trail, but its key, envelope and
/// bytes are destroyed.
pub(crate) fn reject_held(conn: &dyn Sql, id: i64, by: &str, now: i64) -> Result<(), StoreError> {
    let thread: Option<Option<i64>> = conn
        .row(
            "UPDATE held SET status = 'rejected', decided_at = $1, decided_by = $2,
                    wrapped_key = NULL, envelope = NULL, raw = NULL
             WHERE id = $3 AND status = 'held'
             RETURNING thread_id",
            args![now, by, id],
        )?
        .map(|r| r.opt_int(0))
        .transpose()?;
    let Some(thread) = thread else {
        let exists = conn.exists("SELECT 1 FROM held WHERE id = $1", args![id])?;
        return Err(if exists {
            StoreError::HeldDecided(id)
        } else {
            StoreError::UnknownHeld(id)
        });
    };
    event(
        conn,
        thread.map(ThreadId),
        "held.rejected",
        serde_json::json!({"held_id": format!("{id:016x}"), "by": by}),
        now,
    )
}
