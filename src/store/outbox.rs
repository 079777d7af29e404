//! The outbox: notifications waiting for, or done with, delivery.
//!
//! Rows are written with the message they announce (see [`Store::create_thread`],
//! [`Store::post_message`] and inbound filings). The outbox is one of the job queue's queues
//! ([`super::queue::Queue::Notifications`]): a worker claims due rows, delivers them and
//! records the outcome here.

use std::collections::HashMap;

use super::model::{
    Attempt, Delivery, DeliveryContent, MessageView, NotificationRecord, ParticipantView,
};
use super::ops::{Done, Op};
use super::projection::{Projection, Viewer};
use super::rows::{MessageRow, OutboxRow, ParticipantRow, ThreadRow, parse};
use super::sealing;
use super::{Store, StoreError, unexpected};
use crate::domain::{DeliveryStatus, MessageId, Mode, NoticeReason, NotificationId, ThreadId};

/// How many earlier messages a convenience notification quotes.
const HISTORY_LIMIT: usize = 10;

/// How many of the latest earlier Message-IDs a notification's References carries, besides
/// the first: enough for every client to thread, bounded however long the thread grows.
const REFERENCES_RECENT: usize = 9;

impl OutboxRow {
    fn record(self) -> Result<NotificationRecord, StoreError> {
        let status: DeliveryStatus = parse("status", &self.status)?;
        Ok(NotificationRecord {
            id: NotificationId(self.id),
            thread_id: ThreadId(self.thread_id),
            message_id: self.message_id.map(MessageId),
            recipient: self.recipient,
            kind: self.kind,
            mode: parse("mode", &self.mode)?,
            next_attempt_at: matches!(status, DeliveryStatus::Queued | DeliveryStatus::Deferred)
                .then_some(self.next_attempt_at),
            status,
            attempts: self.attempts,
            last_error: self.last_error,
            created_at: self.created_at,
            sent_at: self.sent_at,
            relay_reply: self.relay_reply,
            tls: self.tls,
        })
    }
}

impl Store {
    /// Loads a claimed batch for delivery with a fixed number of queries, opening content only
    /// for convenience mode and each message once however many notifications quote it. One
    /// result per id, in order.
    pub async fn deliveries(
        &self,
        ids: &[NotificationId],
    ) -> Result<Vec<Result<Delivery, StoreError>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.backend().deliveries(ids, HISTORY_LIMIT as i64).await?;
        let recipients = self.open_recipients(rows.recipients).await?;
        let conversations = self.open_conversations(rows.threads)?;
        Ok(ids
            .iter()
            .map(|id| delivery(*id, &rows.outbox, &recipients, &conversations))
            .collect())
    }

    /// The recipients, their names opened with their threads' keys (cached: usually no query).
    async fn open_recipients(
        &self,
        rows: Vec<ParticipantRow>,
    ) -> Result<HashMap<i64, ParticipantView>, StoreError> {
        let mut recipients = HashMap::with_capacity(rows.len());
        for p in rows {
            let key = self.thread_key(ThreadId(p.thread_id)).await?;
            recipients.insert(p.id, sealing::open_participant(&key, p)?);
        }
        Ok(recipients)
    }

    /// Per thread of a convenience notification: its subject and the messages of the windows
    /// read, opened, with their sequence numbers.
    fn open_conversations(
        &self,
        threads: Vec<(ThreadRow, Vec<MessageRow>)>,
    ) -> Result<HashMap<i64, Conversation>, StoreError> {
        let mut opened = HashMap::with_capacity(threads.len());
        for (t, messages) in threads {
            let thread = t.thread();
            let key = sealing::thread_key(self.keyring(), &t)?;
            let views = messages
                .into_iter()
                .map(|m| Ok((m.seq, sealing::open_message(thread, &key, m)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            opened.insert(t.id, (sealing::open_subject(&key, &t)?, views));
        }
        Ok(opened)
    }

    /// Fills in each delivery's References: the Message-IDs of the earlier notifications of the
    /// same thread to the same participant — the first one (the thread's root) and the
    /// `REFERENCES_RECENT` latest, as RFC 5322 advises trimming long lists. Read once the
    /// batch's own Message-IDs are fixed, since earlier ones may be fixed in the same batch;
    /// one query per (thread, participant) in the batch.
    pub async fn fill_references(&self, deliveries: &mut [Delivery]) -> Result<(), StoreError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let ids: Vec<(NotificationId, ThreadId)> =
            deliveries.iter().map(|d| (d.id, d.thread_id)).collect();
        let (seqs, earlier) = self
            .backend()
            .earlier_message_ids(&ids, REFERENCES_RECENT)
            .await?;
        for d in deliveries.iter_mut() {
            let Some((participant, seq)) = seqs.get(&d.id.0) else {
                continue;
            };
            let before: Vec<&(i64, String)> = earlier[&(d.thread_id.0, *participant)]
                .iter()
                .filter(|(s, _)| s < seq)
                .collect();
            let recent = before.len().saturating_sub(REFERENCES_RECENT);
            d.references = before
                .first()
                .filter(|_| recent > 0)
                .into_iter()
                .chain(&before[recent..])
                .map(|(_, id)| id.clone())
                .collect();
        }
        Ok(())
    }

    /// Fixes the Message-IDs of a batch on first composition; returns, in order, the
    /// Message-ID that holds for each (an earlier attempt's, if there was one).
    pub async fn fix_message_ids(
        &self,
        candidates: &[(NotificationId, String)],
    ) -> Result<Vec<String>, StoreError> {
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        match self.write(Op::FixMessageIds(candidates.to_vec())).await? {
            Done::MessageIds(ids) => Ok(ids),
            _ => Err(unexpected("fix-message-ids")),
        }
    }

    /// Records the outcomes of a batch of delivery attempts, with their events, releasing the
    /// claims.
    pub async fn record_attempts(
        &self,
        attempts: &[(NotificationId, Attempt)],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.write(Op::RecordAttempts(attempts.to_vec()))
            .await
            .map(drop)
    }

    /// Outbox rows, newest first, optionally filtered by status and thread.
    pub async fn list_notifications(
        &self,
        status: Option<DeliveryStatus>,
        thread: Option<ThreadId>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        self.backend()
            .notifications(status, thread)
            .await?
            .into_iter()
            .map(OutboxRow::record)
            .collect()
    }
}

/// A thread's subject and the messages read for a batch, with their sequence numbers.
type Conversation = (String, Vec<(i64, MessageView)>);

/// One claimed notification with what it may say: nothing for a secure one, a fixed sentence
/// for a notice, the message and the ten before it for a convenience one.
fn delivery(
    id: NotificationId,
    outbox: &HashMap<i64, OutboxRow>,
    recipients: &HashMap<i64, ParticipantView>,
    conversations: &HashMap<i64, Conversation>,
) -> Result<Delivery, StoreError> {
    let row = outbox
        .get(&id.0)
        .ok_or_else(|| StoreError::Corrupt(format!("notification {id} vanished")))?;
    let recipient = recipients
        .get(&row.participant_id)
        .ok_or_else(|| StoreError::Corrupt(format!("recipient of notification {id}")))?;
    let mode: Mode = parse("mode", &row.mode)?;
    let content = match (mode, row.message_id) {
        _ if row.kind != "message" => {
            DeliveryContent::Notice(parse::<NoticeReason>("notification kind", &row.kind)?)
        }
        (Mode::Secure, _) => DeliveryContent::Secure,
        (Mode::Convenience, None) => {
            return Err(StoreError::Corrupt(format!(
                "convenience notification {id} names no message"
            )));
        }
        (Mode::Convenience, Some(message_id)) => {
            let (subject, messages) = conversations
                .get(&row.thread_id)
                .ok_or_else(|| StoreError::Corrupt(format!("thread of notification {id}")))?;
            let at = messages
                .iter()
                .position(|(_, m)| m.id.0 == message_id)
                .ok_or_else(|| StoreError::Corrupt(format!("message of notification {id}")))?;
            let seq = messages[at].0;
            // What the recipient may see of the conversation (the thread's row says whether
            // it is shared; here only the messages' rule applies).
            let rule = Projection::new(
                Viewer::Participant(recipient.id),
                Some(recipient.role),
                false,
            );
            DeliveryContent::Convenience {
                subject: subject.clone(),
                message: messages[at].1.clone(),
                // Newest first: the messages of its own window only.
                history: messages[..at]
                    .iter()
                    .rev()
                    .take_while(|(s, _)| *s >= seq - HISTORY_LIMIT as i64)
                    .filter(|(_, m)| rule.shows_message(m))
                    .map(|(_, m)| m.clone())
                    .collect(),
            }
        }
    };
    Ok(Delivery {
        id,
        thread_id: ThreadId(row.thread_id),
        recipient: recipient.clone(),
        created_at: row.created_at,
        attempts: row.attempts,
        email_message_id: row.email_message_id.clone(),
        references: Vec::new(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Via};
    use crate::store::testing;
    use crate::store::testing::per_engine;

    per_engine! {
        /// One batch announcing messages far apart in a long thread: each quotes the ten messages
        /// before its own, nothing from the other's window.
        async fn a_batch_quotes_each_notifications_own_history(fixture) {
            let store = fixture.store.clone();
            let lee = Address::parse(testing::LEE).unwrap();
            let first = testing::clinic_thread(&store, "m1").await;
            let mut notifications = vec![first.notifications[0]];
            for n in 2..=30 {
                let posted = store
                    .post_message(first.thread_id, &lee, &format!("m{n}"), Via::Cli)
                    .await
                    .unwrap();
                notifications.push(posted.notifications[0]);
            }
            let batch = [notifications[2], notifications[29], notifications[12]];
            let loaded = store.deliveries(&batch).await.unwrap();
            let quoted = |d: &Delivery| match &d.content {
                DeliveryContent::Convenience {
                    message, history, ..
                } => (
                    message.body.clone(),
                    history.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
                ),
                _ => panic!("a convenience notification"),
            };
            let names = |r: std::ops::RangeInclusive<i32>| r.rev().map(|n| format!("m{n}")).collect();
            let (m3, h3) = quoted(loaded[0].as_ref().unwrap());
            assert_eq!((m3.as_str(), h3), ("m3", names(1..=2)));
            let (m30, h30) = quoted(loaded[1].as_ref().unwrap());
            assert_eq!((m30.as_str(), h30), ("m30", names(20..=29)));
            let (m13, h13) = quoted(loaded[2].as_ref().unwrap());
            assert_eq!((m13.as_str(), h13), ("m13", names(3..=12)));

            // What reply-text extraction is told was sent: the eleven latest messages, plus the
            // window of an older notification the reply answers.
            let mut sent = store
                .sent_bodies(first.thread_id, Some(notifications[2]), 11)
                .await
                .unwrap();
            sent.sort_by_key(|b| b[1..].parse::<i32>().unwrap());
            let expected: Vec<String> = (1..=3).chain(20..=30).map(|n| format!("m{n}")).collect();
            assert_eq!(sent, expected);
            let latest = store.sent_bodies(first.thread_id, None, 11).await.unwrap();
            assert_eq!(latest.len(), 11);
        }
    }
}
