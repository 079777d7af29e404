//! Every write of the store, as typed operations the writer thread runs (see [`super::writer`]).
//!
//! Each function here runs inside its own savepoint of the batch's transaction and either does
//! all its rows or none. What they receive is sealed already (the store's facade seals with the
//! thread's key before it sends an operation), so nothing here sees content in clear.

use rusqlite::{Connection, OptionalExtension, params};

use super::{codes, web, webhooks};
use crate::domain::webhook::WebhookEvent;
use crate::domain::{
    Address, ApiKeyId, DeliveryStatus, LedgerOutcome, Mode, NoticeReason, NotificationId,
    ParticipantId, PersonId, PersonKind, Role, ThreadId,
};
use crate::store::api_keys::ApiKeyRecord;
use crate::store::idempotency::{Found, IdempotencyKey, KEEP_SECS, SealedAnswer};
use crate::store::people::SealedPerson;
use crate::store::sealing::{Answers, SealedParticipant, SealedPost, SealedThread};
use crate::store::webhooks::{NewWebhookRow, WebhookAttempt};
use crate::store::{
    Attempt, Committed, Consent, Inbound, InboundAction, Notice, Posted, Release, SealedHeld,
    SealedMessage, StoreError,
};

/// A write, as the writer thread runs it.
pub(crate) enum Op {
    /// The conversations one new message opens: all of them, or none.
    CreateThreads(Vec<SealedThread>),
    Post(SealedPost),
    CloseThread(ThreadId),
    ReopenThread(ThreadId),
    RemoveParticipant(ThreadId, Address),
    /// `bool`: the conversation may become shared.
    AddParticipant(ThreadId, SealedParticipant, bool),
    Inbound(Box<Inbound>),
    ReleaseClaims {
        owner: String,
    },
    Claim {
        owner: String,
        now: i64,
        limit: i64,
        lease_secs: i64,
    },
    Unclaim(NotificationId),
    FixMessageIds(Vec<(NotificationId, String)>),
    RecordAttempts(Vec<(NotificationId, Attempt)>),
    RejectHeld {
        id: i64,
        by: String,
    },
    SetConsent(Consent),
    PutPerson(Box<SealedPerson>),
    CreateApiKey(ApiKeyRecord),
    IdempotencyBegin(IdempotencyKey),
    IdempotencyFinish {
        api_key: ApiKeyId,
        key: String,
        answer: Option<SealedAnswer>,
    },
    RevokeApiKey(ApiKeyId),
    RemovePerson(Address),
    CreateWebhook(NewWebhookRow),
    RemoveWebhook(i64),
    ClaimWebhookDeliveries {
        owner: String,
        now: i64,
        limit: i64,
        lease_secs: i64,
    },
    RecordWebhookAttempts(Vec<(i64, WebhookAttempt)>),
    Web(web::WebOp),
    Code(codes::CodeOp),
    /// Moves display names written in clear before schema version 3 into their sealed column.
    SealNames(Vec<(ParticipantId, Vec<u8>)>),
    /// Re-normalised participant addresses (schema version 3).
    SetAddresses(Vec<(ParticipantId, Address)>),
    /// Test builds: any statement (to install a fault).
    #[cfg(test)]
    Execute(String),
}

impl Op {
    /// A name for logs.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::CreateThreads(_) => "create-threads",
            Op::Post(_) => "post",
            Op::CloseThread(_) => "close-thread",
            Op::ReopenThread(_) => "reopen-thread",
            Op::RemoveParticipant(..) => "remove-participant",
            Op::AddParticipant(..) => "add-participant",
            Op::Inbound(_) => "inbound",
            Op::ReleaseClaims { .. } => "release-claims",
            Op::Claim { .. } => "claim",
            Op::Unclaim(_) => "unclaim",
            Op::FixMessageIds(_) => "fix-message-ids",
            Op::RecordAttempts(_) => "record-attempts",
            Op::RejectHeld { .. } => "reject-held",
            Op::SetConsent(_) => "set-consent",
            Op::PutPerson(_) => "put-person",
            Op::CreateApiKey(_) => "create-api-key",
            Op::IdempotencyBegin(_) => "idempotency-begin",
            Op::IdempotencyFinish { .. } => "idempotency-finish",
            Op::RevokeApiKey(_) => "revoke-api-key",
            Op::RemovePerson(_) => "remove-person",
            Op::CreateWebhook(_) => "create-webhook",
            Op::RemoveWebhook(_) => "remove-webhook",
            Op::ClaimWebhookDeliveries { .. } => "claim-webhook-deliveries",
            Op::RecordWebhookAttempts(_) => "record-webhook-attempts",
            Op::Web(op) => op.name(),
            Op::Code(op) => op.name(),
            Op::SealNames(_) => "seal-names",
            Op::SetAddresses(_) => "set-addresses",
            #[cfg(test)]
            Op::Execute(_) => "execute",
        }
    }
}

/// What an operation returns.
pub(crate) enum Done {
    Posted(Posted),
    PostedAll(Vec<Posted>),
    Committed(Committed),
    Count(u64),
    Claimed(Vec<NotificationId>),
    Ids(Vec<i64>),
    MessageIds(Vec<String>),
    Found(Found),
    Reserve(crate::domain::lockout::Reservation),
    Nothing,
}

/// Runs one operation on `conn` (a savepoint of the batch's transaction).
pub(crate) fn apply(conn: &Connection, op: &Op, now: i64) -> Result<Done, StoreError> {
    match op {
        Op::CreateThreads(ts) => ts
            .iter()
            .map(|t| create_thread(conn, t, now))
            .collect::<Result<_, _>>()
            .map(Done::PostedAll),
        Op::Post(p) => post(conn, p, now).map(Done::Posted),
        Op::CloseThread(t) => close_thread(conn, *t, "closed", now).map(|_| Done::Nothing),
        Op::ReopenThread(t) => close_thread(conn, *t, "open", now).map(|_| Done::Nothing),
        Op::RemoveParticipant(t, a) => remove_participant(conn, *t, a, now).map(Done::Count),
        Op::AddParticipant(t, p, shared) => {
            add_participant(conn, *t, p, *shared, now).map(|_| Done::Nothing)
        }
        Op::CreateWebhook(w) => webhooks::create(conn, w, now).map(|_| Done::Nothing),
        Op::RemoveWebhook(id) => webhooks::remove(conn, *id, now).map(Done::Count),
        Op::ClaimWebhookDeliveries {
            owner,
            now,
            limit,
            lease_secs,
        } => webhooks::claim(conn, owner, *now, *limit, *lease_secs).map(Done::Ids),
        Op::RecordWebhookAttempts(a) => webhooks::record(conn, a).map(|_| Done::Nothing),
        Op::Web(op) => web::apply(conn, op, now),
        Op::Code(op) => codes::apply(conn, op, now),
        Op::Inbound(item) => inbound(conn, item, now).map(Done::Committed),
        Op::ReleaseClaims { owner } => release_claims(conn, owner).map(Done::Count),
        Op::Claim {
            owner,
            now,
            limit,
            lease_secs,
        } => claim(conn, owner, *now, *limit, *lease_secs).map(Done::Claimed),
        Op::Unclaim(id) => {
            conn.prepare_cached(
                "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE id = ?1",
            )?
            .execute([id.0])?;
            Ok(Done::Nothing)
        }
        Op::FixMessageIds(c) => fix_message_ids(conn, c).map(Done::MessageIds),
        Op::RecordAttempts(a) => record_attempts(conn, a, now).map(|_| Done::Nothing),
        Op::RejectHeld { id, by } => reject_held(conn, *id, by, now).map(|_| Done::Nothing),
        Op::SetConsent(c) => set_consent(conn, c, now).map(|_| Done::Nothing),
        Op::PutPerson(p) => put_person(conn, p, now).map(|_| Done::Nothing),
        Op::IdempotencyBegin(k) => idempotency_begin(conn, k, now).map(Done::Found),
        Op::IdempotencyFinish {
            api_key,
            key,
            answer,
        } => {
            match answer {
                Some(a) => conn
                    .prepare_cached(
                        "UPDATE idempotency SET status = ?1, body = ?2, key_id = ?3,
                                                wrapped_key = ?4
                         WHERE api_key_id = ?5 AND key = ?6",
                    )?
                    .execute(params![
                        a.status,
                        a.sealed,
                        i64::from(a.wrapped.key_id),
                        a.wrapped.sealed,
                        api_key.0,
                        key
                    ])?,
                None => conn
                    .prepare_cached("DELETE FROM idempotency WHERE api_key_id = ?1 AND key = ?2")?
                    .execute(params![api_key.0, key])?,
            };
            Ok(Done::Nothing)
        }
        Op::CreateApiKey(k) => {
            conn.prepare_cached(
                "INSERT INTO api_keys (id, name, scope, secret_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                k.id.0,
                k.name,
                k.scope.as_str(),
                k.secret_hash,
                now
            ])?;
            event(
                conn,
                None,
                "apikey.created",
                serde_json::json!({"key": k.id.to_string(), "scope": k.scope.as_str()}),
                now,
            )?;
            Ok(Done::Nothing)
        }
        Op::RevokeApiKey(id) => {
            let n = conn
                .prepare_cached(
                    "UPDATE api_keys SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                )?
                .execute(params![now, id.0])?;
            if n == 0 {
                return Err(StoreError::Invalid(format!(
                    "no API key {id} that is not already revoked"
                )));
            }
            event(
                conn,
                None,
                "apikey.revoked",
                serde_json::json!({"key": id.to_string()}),
                now,
            )?;
            Ok(Done::Nothing)
        }
        Op::RemovePerson(a) => remove_person(conn, a, now).map(|_| Done::Nothing),
        Op::SealNames(names) => {
            for (id, sealed) in names {
                conn.prepare_cached(
                    "UPDATE participants SET display_name_sealed = ?1, display_name = NULL
                     WHERE id = ?2",
                )?
                .execute(params![sealed, id.0])?;
            }
            Ok(Done::Nothing)
        }
        Op::SetAddresses(addresses) => {
            for (id, address) in addresses {
                set_address(conn, *id, address)?;
            }
            Ok(Done::Nothing)
        }
        #[cfg(test)]
        Op::Execute(sql) => {
            conn.execute_batch(sql)?;
            Ok(Done::Nothing)
        }
    }
}

fn create_thread(conn: &Connection, t: &SealedThread, now: i64) -> Result<Posted, StoreError> {
    conn.prepare_cached(
        "INSERT INTO threads (id, mode, key_id, wrapped_key, subject, created_at, last_activity_at,
                              seq, shared)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, (SELECT COALESCE(MAX(seq), 0) + 1 FROM threads),
                 ?7)",
    )?
    .execute(params![
        t.thread.0,
        t.mode.as_str(),
        i64::from(t.wrapped.key_id),
        t.wrapped.sealed,
        t.subject,
        now,
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
fn insert_participant(
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

fn post(conn: &Connection, p: &SealedPost, now: i64) -> Result<Posted, StoreError> {
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
fn thread_state(conn: &Connection, thread: ThreadId) -> Result<(Mode, String), StoreError> {
    let (mode, status): (String, String) = conn
        .prepare_cached("SELECT mode, status FROM threads WHERE id = ?1")?
        .query_row([thread.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .ok_or(StoreError::UnknownThread(thread))?;
    Ok((parse("mode", &mode)?, status))
}

fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, StoreError> {
    v.parse()
        .map_err(|_| StoreError::Corrupt(format!("unexpected {what} '{v}'")))
}

/// The message of this thread a new message answers, if what it names is one (a message
/// still there, or a notification that carried one).
fn answered_message(
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
fn insert_message(
    conn: &Connection,
    thread: ThreadId,
    mode: Mode,
    message: &SealedMessage,
    now: i64,
) -> Result<Posted, StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (id, thread_id, seq, author_id, body, via, created_at, auth,
                               answers_id)
         VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE thread_id = ?2),
                 ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        message.id.0,
        thread.0,
        message.author.0,
        message.body(),
        message.via.as_str(),
        now,
        message.auth,
        answered_message(conn, thread, message.answers)?
    ])?;
    conn.prepare_cached("UPDATE threads SET last_activity_at = ?1 WHERE id = ?2")?
        .execute(params![now, thread.0])?;
    // Archiving is a participant's own filing: a new message brings the conversation back
    // into everyone's inbox.
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
    // Content goes by email only to staff and to recipients who consented to it; someone who
    // opted out of notifications gets a row recorded as suppressed, never sent.
    let recipients: Vec<(i64, String, bool)> = conn
        .prepare_cached(
            "SELECT p.id, p.address,
                    p.role = 'staff' OR EXISTS (SELECT 1 FROM people pe
                        WHERE pe.address = p.address AND pe.convenience = 'yes')
             FROM participants p
             WHERE p.thread_id = ?1 AND p.id <> ?2 AND p.revoked_at IS NULL ORDER BY p.address",
        )?
        .query_map(params![thread.0, message.author.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut notifications = Vec::with_capacity(recipients.len());
    for (participant, address, may_have_content) in recipients {
        let mode = if may_have_content { mode } else { Mode::Secure };
        let n = NotificationId::random();
        conn.prepare_cached(
            "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                                 mode, next_attempt_at, created_at, status)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, ?3, ?4, ?5,
                     'message', ?6, ?7, ?7, CASE WHEN EXISTS (SELECT 1 FROM people WHERE address = ?5 AND notifications = 'off') THEN 'suppressed' ELSE 'queued' END)",
        )?
        .execute(params![
            n.0,
            thread.0,
            message.id.0,
            participant,
            address,
            mode.as_str(),
            now
        ])?;
        notifications.push(n);
    }
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

/// Closes (`status` "closed") or re-opens ("open") a thread; doing it twice changes nothing
/// and records nothing more.
fn close_thread(
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

fn remove_participant(
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
fn add_participant(
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

/// One decided inbound message.
fn inbound(conn: &Connection, item: &Inbound, now: i64) -> Result<Committed, StoreError> {
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
                conn.prepare_cached(
                    "UPDATE outbox SET status = 'bounced', last_error = ?1
                     WHERE id = ?2 AND status IN ('sent', 'queued', 'deferred')",
                )?
                .execute(params![detail, notification.0])?;
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
fn received_before(conn: &Connection, item: &Inbound) -> Result<bool, StoreError> {
    let (Some(thread), Some(id)) = (item.thread, &item.header_message_id) else {
        return Ok(false);
    };
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM inbound WHERE thread_id = ?1 AND header_message_id = ?2
                                                   AND filed_message_id IS NOT NULL)
                 OR EXISTS (SELECT 1 FROM held WHERE thread_id = ?1 AND header_message_id = ?2
                                                AND status = 'held')",
        )?
        .query_row(params![thread.0, id], |r| r.get(0))?)
}

/// Puts a message in the held queue: the sealed row, its ledger row, an event, and perhaps a
/// content-free notice to its (verified) participant — unless it is a copy of one filed or
/// held there already.
fn hold(
    conn: &Connection,
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
    conn.prepare_cached(
        "INSERT INTO held (id, received_at, door, reason, thread_id, participant_id,
                           header_message_id, size, key_id, wrapped_key, envelope, raw, auth,
                           client, sender_domain)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        item.id,
        item.received_at,
        item.door.as_str(),
        held.reason.as_str(),
        item.thread.map(|t| t.0),
        held.participant.map(|p| p.0),
        item.header_message_id,
        size,
        key_id,
        wrapped,
        envelope,
        raw,
        held.auth,
        held.client,
        held.sender_domain
    ])?;
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
fn held_quota_full(
    conn: &Connection,
    item: &Inbound,
    held: &SealedHeld,
    limits: &crate::domain::held::Limits,
    size: i64,
    now: i64,
) -> Result<Option<crate::domain::held::Quota>, StoreError> {
    use crate::domain::held::{Quota, Waiting, full};
    let count = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<u64, StoreError> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([value], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))?)
    };
    let (total, total_bytes): (i64, i64) = conn
        .prepare_cached("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM held WHERE status = 'held'")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let (total, total_bytes) = (
        u64::try_from(total).unwrap_or(0),
        u64::try_from(total_bytes).unwrap_or(0),
    );
    let waiting = Waiting {
        from_client: held
            .client
            .as_ref()
            .map(|c| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND client = ?1",
                    c,
                )
            })
            .transpose()?,
        from_sender_domain: held
            .sender_domain
            .as_ref()
            .map(|d| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND sender_domain = ?1",
                    d,
                )
            })
            .transpose()?,
        for_reply_address: held
            .participant
            .map(|p| {
                count(
                    "SELECT COUNT(*) FROM held WHERE status = 'held' AND participant_id = ?1",
                    &p.0,
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
        .prepare_cached(
            "INSERT INTO held_alerts (quota, source, at) VALUES (?1, ?2, ?3)
             ON CONFLICT (quota, source) DO UPDATE SET at = excluded.at
             WHERE held_alerts.at < excluded.at - 86400
             RETURNING 1",
        )?
        .query_row(params![quota.as_str(), source, now], |_| Ok(()))
        .optional()?
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
fn file(
    conn: &Connection,
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
    let revoked = conn
        .prepare_cached(
            "SELECT revoked_at IS NOT NULL FROM participants WHERE id = ?1 AND thread_id = ?2",
        )?
        .query_row(params![message.author.0, thread.0], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(true);
    if revoked {
        return Err(StoreError::Revoked(thread));
    }
    if let Some(release) = release {
        let updated = conn
            .prepare_cached(
                "UPDATE held SET status = 'released', decided_at = ?1, decided_by = ?2
                 WHERE id = ?3 AND status = 'held'",
            )?
            .execute(params![now, release.by, release.held])?;
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
        let filed_before = conn
            .prepare_cached(
                "SELECT 1 FROM inbound
                 WHERE thread_id = ?1 AND header_message_id = ?2 AND filed_message_id IS NOT NULL",
            )?
            .exists(params![thread.0, id])?;
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
fn revert_to_secure(
    conn: &Connection,
    notification: NotificationId,
    complaint: bool,
    now: i64,
) -> Result<(), StoreError> {
    let row: Option<(i64, String, String)> = conn
        .prepare_cached(
            "SELECT o.thread_id, p.address, o.mode FROM outbox o
             JOIN participants p ON p.id = o.participant_id
             WHERE o.id = ?1 AND o.kind = 'message' AND p.role = 'recipient'",
        )?
        .query_row([notification.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((thread, address, mode)) = row else {
        return Ok(());
    };
    if mode != Mode::Convenience.as_str() {
        return Ok(());
    }
    let address = Address::parse(&address)
        .map_err(|_| StoreError::Corrupt(format!("address of notification {notification}")))?;
    let (by, text) = if complaint {
        (
            "complaint",
            "Withdrawn by Sealpost: the recipient's mail provider reported a convenience notification as unwanted.",
        )
    } else {
        (
            "bounce",
            "Withdrawn by Sealpost: a convenience notification bounced.",
        )
    };
    set_consent(
        conn,
        &Consent {
            address,
            convenience: false,
            text: text.to_owned(),
            by: by.to_owned(),
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

/// Queues a content-free notice about a recipient to every active staff participant of
/// `thread`.
pub(crate) fn notify_staff(
    conn: &Connection,
    thread: ThreadId,
    why: NoticeReason,
    now: i64,
) -> Result<(), StoreError> {
    let staff: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM participants
             WHERE thread_id = ?1 AND role = 'staff' AND revoked_at IS NULL",
        )?
        .query_map([thread.0], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
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
    conn: &Connection,
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

/// A participant's address in its normal form (schema version 3), and their person with it:
/// the person takes the normal form too, or, when someone already has it, the participant
/// joins them and the person left with no one (made by the migration, nothing recorded) goes.
fn set_address(conn: &Connection, id: ParticipantId, address: &Address) -> Result<(), StoreError> {
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

/// A remembered request: its fingerprint, its answer (sealed, with its wrapped key) once
/// there is one, and when it began.
type Remembered = (
    Vec<u8>,
    Option<u16>,
    Option<Vec<u8>>,
    Option<i64>,
    Option<Vec<u8>>,
    i64,
);

/// Looks up (and, the first time, records) a request's Idempotency-Key; answers older than a
/// day are forgotten first.
fn idempotency_begin(conn: &Connection, k: &IdempotencyKey, now: i64) -> Result<Found, StoreError> {
    conn.prepare_cached("DELETE FROM idempotency WHERE created_at < ?1")?
        .execute([now - KEEP_SECS])?;
    let row: Option<Remembered> = conn
        .prepare_cached(
            "SELECT fingerprint, status, body, key_id, wrapped_key, created_at FROM idempotency
             WHERE api_key_id = ?1 AND key = ?2",
        )?
        .query_row(params![k.api_key.0, k.key], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    Ok(match row {
        None => {
            conn.prepare_cached(
                "INSERT INTO idempotency (api_key_id, key, fingerprint, created_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![k.api_key.0, k.key, k.fingerprint, now])?;
            Found::New
        }
        Some((fingerprint, ..)) if fingerprint != k.fingerprint => Found::Mismatch,
        Some((_, Some(status), Some(sealed), Some(key_id), Some(wrapped), _)) => Found::Answered {
            status,
            sealed,
            key_id,
            wrapped,
        },
        // Its process died mid-request: not done, and the key may be used again.
        Some((.., started)) if crate::domain::idempotency::abandoned(started, now) => {
            conn.prepare_cached(
                "UPDATE idempotency SET created_at = ?1 WHERE api_key_id = ?2 AND key = ?3",
            )?
            .execute(params![now, k.api_key.0, k.key])?;
            Found::New
        }
        Some(_) => Found::InProgress,
    })
}

/// Writes a person's directory entry (not their consent). The entry's id and key were read
/// before sealing: if someone else created or keyed the same person meanwhile, the sealed
/// fields would not open, so the write is refused and may be tried again.
fn put_person(conn: &Connection, p: &SealedPerson, now: i64) -> Result<(), StoreError> {
    let existing: Option<(i64, bool)> = conn
        .prepare_cached("SELECT id, wrapped_key IS NOT NULL FROM people WHERE address = ?1")?
        .query_row([p.address.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let raced = || {
        StoreError::Unavailable(format!(
            "{} was changed at the same time; try again",
            p.address
        ))
    };
    match existing {
        Some((id, _)) if id != p.id.0 => return Err(raced()),
        Some((_, true)) if p.new_key.is_some() => return Err(raced()),
        Some((_, false)) if p.new_key.is_none() => return Err(raced()),
        None if p.new_key.is_none() => return Err(raced()),
        _ => {}
    }
    let (key_id, wrapped) = match &p.new_key {
        Some(k) => (Some(i64::from(k.key_id)), Some(k.sealed.as_slice())),
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO people (id, address, created_at, updated_at, kind, title, practice,
                             notifications, status, key_id, wrapped_key, name_sealed,
                             birth_date_sealed, mobile_sealed)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (address) DO UPDATE SET updated_at = ?3, kind = ?4, title = ?5,
             practice = ?6, notifications = ?7, status = ?8,
             key_id = COALESCE(?9, key_id), wrapped_key = COALESCE(?10, wrapped_key),
             name_sealed = ?11, birth_date_sealed = ?12, mobile_sealed = ?13",
    )?
    .execute(params![
        p.id.0,
        p.address.as_str(),
        now,
        p.kind.as_str(),
        p.title,
        p.practice,
        if p.notifications { "on" } else { "off" },
        p.status.as_str(),
        key_id,
        wrapped,
        p.name,
        p.birth_date,
        p.mobile
    ])?;
    event(
        conn,
        None,
        "person.updated",
        serde_json::json!({"person": p.id.0, "kind": p.kind.as_str(),
            "notifications": p.notifications, "status": p.status.as_str()}),
        now,
    )?;
    Ok(())
}

/// Removes a person who takes part in no thread any more; their sealed data is unreadable
/// without the key that goes with the row.
fn remove_person(conn: &Connection, address: &Address, now: i64) -> Result<(), StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM people WHERE address = ?1")?
        .query_row([address.as_str()], |r| r.get(0))
        .optional()?;
    let Some(id) = id else {
        return Err(StoreError::UnknownPerson(address.clone()));
    };
    let threads: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM participants WHERE address = ?1 AND revoked_at IS NULL",
        )?
        .query_row([address.as_str()], |r| r.get(0))?;
    if threads > 0 {
        return Err(StoreError::PersonInUse {
            address: address.clone(),
            threads,
        });
    }
    conn.prepare_cached("UPDATE participants SET person_id = NULL WHERE person_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM people WHERE id = ?1")?
        .execute([id])?;
    event(
        conn,
        None,
        "person.removed",
        serde_json::json!({"person": id}),
        now,
    )?;
    Ok(())
}

/// Records a person's choice about convenience mode (creating their directory entry when
/// needed). Withdrawn consent also turns their convenience notifications still waiting to go
/// out into secure ones.
pub(crate) fn set_consent(conn: &Connection, c: &Consent, now: i64) -> Result<(), StoreError> {
    let choice = if c.convenience { "yes" } else { "no" };
    let person = conn
        .prepare_cached(
            "INSERT INTO people (id, address, created_at, updated_at, convenience, convenience_at,
                             convenience_text, convenience_by)
         VALUES (?1, ?2, ?3, ?3, ?4, ?3, ?5, ?6)
         ON CONFLICT (address) DO UPDATE SET updated_at = ?3, convenience = ?4,
             convenience_at = ?3, convenience_text = ?5, convenience_by = ?6
         RETURNING id",
        )?
        .query_row(
            params![
                PersonId::random().0,
                c.address.as_str(),
                now,
                choice,
                c.text,
                c.by
            ],
            |r| r.get::<_, i64>(0),
        )?;
    let downgraded = if c.convenience {
        0
    } else {
        conn.prepare_cached(
            "UPDATE outbox SET mode = 'secure'
             WHERE mode = 'convenience' AND kind = 'message'
               AND status IN ('queued', 'deferred') AND claimed_by IS NULL
               AND participant_id IN (SELECT id FROM participants
                                      WHERE address = ?1 AND role = 'recipient')",
        )?
        .execute([c.address.as_str()])?
    };
    event(
        conn,
        None,
        "person.consent",
        serde_json::json!({"person": person, "convenience": choice, "by": c.by, "queued_made_secure": downgraded}),
        now,
    )?;
    Ok(())
}

/// Queues a content-free notice to a verified participant, or records it as suppressed with
/// why: [`crate::domain::notice`] decides, from how many notices went to the same person (their
/// address, whichever conversation) within the last hour. Returns whether one was queued.
fn queue_notice(
    conn: &Connection,
    thread: ThreadId,
    notice: Notice,
    now: i64,
) -> Result<bool, StoreError> {
    let (address, mode, revoked, opted_out): (String, String, bool, bool) = conn
        .prepare_cached(
            "SELECT p.address, t.mode, p.revoked_at IS NOT NULL,
                    EXISTS (SELECT 1 FROM people WHERE address = p.address
                                                   AND notifications = 'off')
             FROM participants p JOIN threads t ON t.id = p.thread_id
             WHERE p.id = ?1",
        )?
        .query_row([notice.participant.0], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    if revoked {
        return Ok(false);
    }
    let person_kinds = NoticeReason::ALL
        .iter()
        .filter(|r| !crate::domain::notice::about_a_recipient(**r))
        .map(|r| format!("'{}'", r.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let sent: i64 = conn
        .prepare_cached(&format!(
            "SELECT COUNT(*) FROM outbox
             WHERE recipient = ?1 AND kind IN ({person_kinds}) AND status <> 'suppressed'
               AND created_at > ?2"
        ))?
        .query_row(
            params![address, now - crate::domain::notice::WINDOW_SECS],
            |r| r.get(0),
        )?;
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
    conn.prepare_cached(
        "INSERT INTO outbox (id, seq, thread_id, message_id, participant_id, recipient, kind,
                             mode, next_attempt_at, created_at, status, last_error)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox), ?2, NULL, ?3, ?4, ?5,
                 ?6, ?7, ?7, ?8, ?9)",
    )?
    .execute(params![
        NotificationId::random().0,
        thread.0,
        notice.participant.0,
        address,
        notice.reason.as_str(),
        mode,
        now,
        status,
        why
    ])?;
    Ok(status == "queued")
}

/// The inbound ledger row: every decided message leaves one (dedupe and audit). Only a filed
/// message keeps its raw copy here (`raw`, sealed); a held one keeps it in the held queue, and
/// nothing else is kept.
fn ledger(
    conn: &Connection,
    item: &Inbound,
    outcome: LedgerOutcome,
    reason: Option<&str>,
    filed: Option<i64>,
    raw: Option<&[u8]>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbound (id, received_at, door, thread_id, header_message_id,
                              imap_uidvalidity, imap_uid, outcome, reason, filed_message_id, raw)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        item.id,
        item.received_at,
        item.door.as_str(),
        item.thread.map(|t| t.0),
        item.header_message_id,
        item.imap.map(|i| i.0),
        item.imap.map(|i| i.1),
        outcome.as_str(),
        reason,
        filed,
        raw,
    ])?;
    Ok(())
}

/// An audit event. `detail` holds ids, counts and reasons, never content.
pub(crate) fn event(
    conn: &Connection,
    thread: Option<ThreadId>,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO events (at, thread_id, kind, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now, thread.map(|t| t.0), kind, detail.to_string()])?;
    if let Some(public) = WebhookEvent::of_audit(kind) {
        let event_id = conn.last_insert_rowid();
        webhooks::fan_out(conn, event_id, public, kind, thread, &detail, now)?;
    }
    Ok(())
}

/// Releases every claim not held by `owner`: only valid while one process delivers (SQLite),
/// when the claims of a process that died are known to be dead.
fn release_claims(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    webhooks::release_claims(conn, owner)?;
    codes::release_claims(conn, owner)?;
    Ok(conn
        .prepare_cached(
            "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL
             WHERE claimed_by IS NOT NULL AND claimed_by <> ?1",
        )?
        .execute([owner])? as u64)
}

/// Claims up to `limit` due notifications for `owner` until `now + lease_secs`, in the order
/// they are due.
fn claim(
    conn: &Connection,
    owner: &str,
    now: i64,
    limit: i64,
    lease_secs: i64,
) -> Result<Vec<NotificationId>, StoreError> {
    let mut rows: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "UPDATE outbox SET claimed_by = ?1, claimed_until = ?2
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE status IN ('queued', 'deferred') AND next_attempt_at <= ?3
                   AND (claimed_until IS NULL OR claimed_until < ?3)
                 ORDER BY next_attempt_at, seq LIMIT ?4)
             RETURNING id, next_attempt_at, seq",
        )?
        .query_map(params![owner, now + lease_secs, now, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.sort_by_key(|(_, next, seq)| (*next, *seq));
    Ok(rows
        .into_iter()
        .map(|(id, _, _)| NotificationId(id))
        .collect())
}

/// Fixes the Message-IDs of a batch on first composition; returns, in order, the one that
/// holds for each (an earlier attempt's, if there was one).
fn fix_message_ids(
    conn: &Connection,
    candidates: &[(NotificationId, String)],
) -> Result<Vec<String>, StoreError> {
    candidates
        .iter()
        .map(|(id, candidate)| {
            conn.prepare_cached(
                "UPDATE outbox SET email_message_id = COALESCE(email_message_id, ?1)
                 WHERE id = ?2 RETURNING email_message_id",
            )?
            .query_row(params![candidate, id.0], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))
        })
        .collect()
}

/// Records the outcomes of a batch of delivery attempts with their events, releasing the
/// claims.
fn record_attempts(
    conn: &Connection,
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
        let thread: Option<i64> = conn
            .prepare_cached(
                "UPDATE outbox SET status = ?1, attempts = attempts + ?2, last_error = ?3,
                        relay_reply = COALESCE(?4, relay_reply), next_attempt_at = ?5,
                        sent_at = COALESCE(?6, sent_at), claimed_by = NULL, claimed_until = NULL,
                        tls = COALESCE(?8, tls),
                        mode = CASE WHEN ?9 THEN 'secure' ELSE mode END
                 WHERE id = ?7 RETURNING thread_id",
            )?
            .query_row(
                params![
                    status.as_str(),
                    counts,
                    error,
                    reply,
                    next,
                    sent_at,
                    id.0,
                    tls,
                    as_secure
                ],
                |r| r.get(0),
            )
            .optional()?;
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

/// Rejects a held message: it stays listed, for the audit trail, but its key, envelope and
/// bytes are destroyed.
fn reject_held(conn: &Connection, id: i64, by: &str, now: i64) -> Result<(), StoreError> {
    let thread: Option<Option<i64>> = conn
        .prepare_cached(
            "UPDATE held SET status = 'rejected', decided_at = ?1, decided_by = ?2,
                    wrapped_key = NULL, envelope = NULL, raw = NULL
             WHERE id = ?3 AND status = 'held'
             RETURNING thread_id",
        )?
        .query_row(params![now, by, id], |r| r.get(0))
        .optional()?;
    let Some(thread) = thread else {
        let exists = conn
            .prepare_cached("SELECT 1 FROM held WHERE id = ?1")?
            .exists([id])?;
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
