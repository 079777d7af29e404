//! The inbound side of the store: where a verified token points, the inbound ledger (dedupe and
//! audit), and the decided messages that [`InboundWriter`](super::InboundWriter) commits.

use sqlx::FromRow;

use super::held::{Release, SealedHeld};
use super::threads::{SealedMessage, ThreadRow, parse};
use super::{Posted, Store, StoreError};
use crate::crypto::{Binding, DataKey, TokenClaims};
use crate::domain::{
    Address, LedgerOutcome, MessageId, Mode, NoticeReason, NotificationId, ParticipantId, Role,
    ThreadId, Via,
};

/// Where a verified reply token points.
#[derive(Debug, Clone)]
pub struct TokenTarget {
    pub thread: ThreadId,
    pub mode: Mode,
    pub closed: bool,
    pub participant: ParticipantRef,
}

/// A participant as the inbound side needs it: who, not what they are called (display names
/// are sealed; deciding about a reply needs no name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantRef {
    pub id: ParticipantId,
    pub address: Address,
    pub role: Role,
    pub revoked: bool,
}

/// What to do with one decided inbound message.
#[derive(Debug, Clone)]
pub enum InboundAction {
    /// File the reply (unless this Message-ID was already filed in the thread), keeping the raw
    /// message sealed under the thread's key (`raw`, for audit). `release` names the held
    /// message this filing releases.
    File {
        message: SealedMessage,
        raw: Vec<u8>,
        release: Option<Release>,
    },
    /// Keep the message sealed in the held queue; optionally queue a rate-limited notice.
    Hold {
        held: SealedHeld,
        notice: Option<(ParticipantId, NoticeReason)>,
    },
    /// Record the outcome only; optionally queue a rate-limited notice to a verified participant.
    Record {
        outcome: LedgerOutcome,
        reason: String,
        notice: Option<(ParticipantId, NoticeReason)>,
    },
    /// A delivery status notification about one of our notifications. Only a `verified` one —
    /// sent with a null sender to the notification's own MAC-tagged bounce address — changes
    /// its status; any other is recorded as information.
    DeliveryStatus {
        notification: NotificationId,
        failed: bool,
        verified: bool,
        detail: String,
    },
}

/// One decided inbound message, ready to commit.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// Chosen before sealing: the raw message's additional authenticated data names it.
    pub id: i64,
    pub door: Via,
    pub received_at: i64,
    pub thread: Option<ThreadId>,
    /// The Message-ID header (or a digest of the message when it has none): the dedupe key.
    pub header_message_id: Option<String>,
    /// (UIDVALIDITY, UID) for the IMAP door.
    pub imap: Option<(i64, i64)>,
    pub action: InboundAction,
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    Filed(Posted),
    /// The same Message-ID was filed before; nothing new.
    Duplicate,
    /// The outcome was recorded; `notice_queued` says whether a notice went to the outbox.
    Recorded {
        notice_queued: bool,
    },
    /// The message is in the held queue under its ledger id.
    Held {
        id: i64,
    },
    /// A notification's delivery status was updated (or, for a transient report, noted).
    StatusUpdated {
        notification: NotificationId,
    },
}

#[derive(FromRow)]
struct TargetRow {
    id: i64,
    address: String,
    role: String,
    revoked_at: Option<i64>,
    thread_id: i64,
    mode: String,
    status: String,
}

impl Store {
    /// The participant and thread a verified token names, if both still exist.
    pub async fn token_target(
        &self,
        claims: &TokenClaims,
    ) -> Result<Option<TokenTarget>, StoreError> {
        self.target_of(claims.thread_id, claims.participant_id)
            .await
    }

    /// The participant and thread a notification was sent to (a reply that names the
    /// notification by its Message-ID).
    pub async fn notification_target(
        &self,
        notification: NotificationId,
    ) -> Result<Option<TokenTarget>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT thread_id, participant_id FROM outbox WHERE id = $1")
                .bind(notification.0)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((t, p)) => self.target_of(ThreadId(t), ParticipantId(p)).await,
            None => Ok(None),
        }
    }

    async fn target_of(
        &self,
        thread: ThreadId,
        participant: ParticipantId,
    ) -> Result<Option<TokenTarget>, StoreError> {
        let row: Option<TargetRow> = sqlx::query_as(
            "SELECT p.id, p.address, p.role, p.revoked_at, p.thread_id, t.mode, t.status
             FROM participants p JOIN threads t ON t.id = p.thread_id
             WHERE p.id = $1 AND p.thread_id = $2",
        )
        .bind(participant.0)
        .bind(thread.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(TokenTarget {
                thread: ThreadId(r.thread_id),
                mode: parse("mode", &r.mode)?,
                closed: r.status == "closed",
                participant: ParticipantRef {
                    id: ParticipantId(r.id),
                    address: Address::parse(&r.address).map_err(|_| {
                        StoreError::Corrupt(format!("participant address of {}", r.id))
                    })?,
                    role: parse("role", &r.role)?,
                    revoked: r.revoked_at.is_some(),
                },
            })
        })
        .transpose()
    }

    /// A thread's data key, for sealing inbound content outside the write transaction.
    pub async fn thread_key(&self, thread: ThreadId) -> Result<DataKey, StoreError> {
        if let Some(k) = self.key_cache.lock().expect("key cache lock").get(&thread) {
            return Ok(k.clone());
        }
        let row: ThreadRow = sqlx::query_as("SELECT * FROM threads WHERE id = $1")
            .bind(thread.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::UnknownThread(thread))?;
        let key = row.key(self)?;
        let mut cache = self.key_cache.lock().expect("key cache lock");
        if cache.len() >= super::KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(thread, key.clone());
        Ok(key)
    }

    /// The bodies of messages a participant was sent, opened, so reply-text extraction can
    /// recognise a copy of them in a reply: the thread's `window` latest messages, and the
    /// `window` ending at the message of `answered` (the notification the reply answers, named
    /// by its In-Reply-To) when that is an older one. One query.
    pub async fn sent_bodies(
        &self,
        thread: ThreadId,
        key: &DataKey,
        answered: Option<NotificationId>,
        window: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, body FROM messages
             WHERE thread_id = $1
               AND (seq > (SELECT COALESCE(MAX(seq), 0) FROM messages WHERE thread_id = $1) - $2
                    OR seq BETWEEN (SELECT m.seq FROM outbox o JOIN messages m ON m.id = o.message_id
                                    WHERE o.id = $3 AND o.thread_id = $1) - $2 + 1
                               AND (SELECT m.seq FROM outbox o JOIN messages m ON m.id = o.message_id
                                    WHERE o.id = $3 AND o.thread_id = $1))",
        )
        .bind(thread.0)
        .bind(i64::from(window))
        .bind(answered.map(|n| n.0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, body)| {
                let opened = key
                    .open(Binding::MessageBody(thread, MessageId(id)), &body)
                    .map_err(|source| StoreError::Seal { thread, source })?;
                String::from_utf8(opened)
                    .map_err(|_| StoreError::Corrupt(format!("body of message {}", MessageId(id))))
            })
            .collect()
    }

    /// The recorded outcome of an IMAP message (by UIDVALIDITY and UID), if it was decided.
    pub async fn imap_outcome(
        &self,
        uidvalidity: i64,
        uid: i64,
    ) -> Result<Option<LedgerOutcome>, StoreError> {
        let word: Option<String> = sqlx::query_scalar(
            "SELECT outcome FROM inbound WHERE imap_uidvalidity = $1 AND imap_uid = $2 ORDER BY received_at DESC LIMIT 1",
        )
        .bind(uidvalidity)
        .bind(uid)
        .fetch_optional(&self.pool)
        .await?;
        word.map(|w| parse("ledger outcome", &w)).transpose()
    }

    /// The notification that was sent with this Message-ID, if any.
    pub async fn notification_by_email_id(
        &self,
        email_message_id: &str,
    ) -> Result<Option<(NotificationId, ThreadId)>, StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT id, thread_id FROM outbox WHERE email_message_id = $1")
                .bind(email_message_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(n, t)| (NotificationId(n), ThreadId(t))))
    }

    /// Whether the notification exists (bounce addresses name one).
    pub async fn notification_thread(
        &self,
        id: NotificationId,
    ) -> Result<Option<ThreadId>, StoreError> {
        let t: Option<i64> = sqlx::query_scalar("SELECT thread_id FROM outbox WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        Ok(t.map(ThreadId))
    }
}
