//! The inbound side of the store: where a verified token points, what a participant was
//! sent, the inbound ledger (dedupe and audit), and committing a decided message.

use super::model::{Committed, Inbound, ParticipantRef, TokenTarget};
use super::ops::{Done, Op};
use super::rows::{TargetRow, parse};
use super::sealing;
use super::{Store, StoreError, unexpected};
use crate::crypto::TokenClaims;
use crate::domain::{Address, LedgerOutcome, NotificationId, ParticipantId, ThreadId};

impl TargetRow {
    fn target(self) -> Result<TokenTarget, StoreError> {
        Ok(TokenTarget {
            thread: ThreadId(self.thread_id),
            mode: parse("mode", &self.mode)?,
            closed: self.status == "closed",
            participant: ParticipantRef {
                id: ParticipantId(self.id),
                address: Address::parse(&self.address).map_err(|_| {
                    StoreError::Corrupt(format!("participant address of {}", self.id))
                })?,
                role: parse("role", &self.role)?,
                revoked: self.revoked_at.is_some(),
            },
            by_email: self.role == "staff" || self.convenience.as_deref() == Some("yes"),
            expired: false,
        })
    }
}

impl Store {
    /// The participant and thread a verified token names, if both still exist.
    pub async fn token_target(
        &self,
        claims: &TokenClaims,
    ) -> Result<Option<TokenTarget>, StoreError> {
        self.backend()
            .target(claims.thread_id, claims.participant_id)
            .await?
            .map(TargetRow::target)
            .transpose()
    }

    /// The participant and thread a notification was sent to (a reply that names the
    /// notification by its Message-ID).
    pub async fn notification_target(
        &self,
        notification: NotificationId,
    ) -> Result<Option<TokenTarget>, StoreError> {
        let Some((thread, participant)) =
            self.backend().notification_recipient(notification).await?
        else {
            return Ok(None);
        };
        self.backend()
            .target(thread, participant)
            .await?
            .map(TargetRow::target)
            .transpose()
    }

    /// The bodies of messages a participant was sent, opened, so reply-text extraction can
    /// recognise a copy of them in a reply: the thread's `window` latest messages, and the
    /// `window` ending at the message of `answered` (the notification the reply answers, named
    /// by its In-Reply-To) when that is an older one. One query.
    pub async fn sent_bodies(
        &self,
        thread: ThreadId,
        answered: Option<NotificationId>,
        window: u32,
    ) -> Result<Vec<String>, StoreError> {
        let key = self.thread_key(thread).await?;
        self.backend()
            .sent_bodies(thread, answered, window)
            .await?
            .into_iter()
            .map(|(id, body)| sealing::open_body(thread, &key, id, &body))
            .collect()
    }

    /// The recorded outcome of an IMAP message (by UIDVALIDITY and UID), if it was decided.
    pub async fn imap_outcome(
        &self,
        uidvalidity: i64,
        uid: i64,
    ) -> Result<Option<LedgerOutcome>, StoreError> {
        self.backend()
            .imap_outcome(uidvalidity, uid)
            .await?
            .map(|w| parse("ledger outcome", &w))
            .transpose()
    }

    /// Whether a message with this Message-ID was filed in `thread`, or is held there waiting
    /// for a decision (a copy of it is then a duplicate).
    pub async fn already_received(
        &self,
        thread: ThreadId,
        header_message_id: &str,
    ) -> Result<bool, StoreError> {
        self.backend()
            .already_received(thread, header_message_id)
            .await
    }

    /// The notification that was sent with this Message-ID, if any.
    pub async fn notification_by_email_id(
        &self,
        email_message_id: &str,
    ) -> Result<Option<(NotificationId, ThreadId)>, StoreError> {
        self.backend()
            .notification_by_email_id(email_message_id)
            .await
    }

    /// The thread of a notification, if it exists (bounce addresses name one).
    pub async fn notification_thread(
        &self,
        id: NotificationId,
    ) -> Result<Option<ThreadId>, StoreError> {
        self.backend().notification_thread(id).await
    }

    /// Commits one decided inbound message, returning once it is durable. Messages arriving
    /// together share a transaction and its fsync (the writer's group commit); each is rolled
    /// back alone if it fails.
    pub async fn commit_inbound(&self, item: Inbound) -> Result<Committed, StoreError> {
        match self.write(Op::Inbound(Box::new(item))).await? {
            Done::Committed(c) => Ok(c),
            _ => Err(unexpected("inbound")),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::{ParticipantId, ThreadId, Via};
    use crate::store::testing;
    use crate::store::testing::per_engine;
    use crate::store::{Committed, Inbound, InboundAction, Store, StoreError};

    /// Commits `items` at once, as concurrent sessions would (the writer batches them).
    async fn commit_all(store: &Store, items: Vec<Inbound>) -> Vec<Result<Committed, StoreError>> {
        futures_util::future::join_all(items.into_iter().map(|i| store.commit_inbound(i))).await
    }

    async fn thread(store: &Store) -> (ThreadId, ParticipantId) {
        let t = testing::clinic_thread(store, "B").await.thread_id;
        (t, testing::jane(store, t).await)
    }

    async fn filing(store: &Store, t: ThreadId, author: ParticipantId, mid: &str) -> Inbound {
        let sealer = store.sealer(t).await.unwrap();
        let id = crate::domain::MessageId::random().0;
        Inbound {
            id,
            door: Via::Smtp,
            received_at: 0,
            thread: Some(t),
            header_message_id: Some(mid.into()),
            imap: None,
            action: InboundAction::File {
                message: sealer.message(author, mid, Via::Smtp),
                raw: sealer.inbound_raw(id, mid.as_bytes()),
                release: None,
            },
        }
    }

    per_engine! {
        /// One batch over two threads: each filing numbered in its thread and announced to the
        /// staff member, the same Message-ID twice filed once, and a closed thread failing alone.
        async fn a_batch_files_numbers_dedupes_and_isolates_failures(fixture) {
            let store = fixture.store.clone();
            let (a, jane_a) = thread(&store).await;
            let (b, jane_b) = thread(&store).await;
            let (closed, jane_c) = thread(&store).await;
            store.close_thread(closed).await.unwrap();
            let items = vec![
                filing(&store, a, jane_a, "<1@x>").await,
                filing(&store, b, jane_b, "<2@x>").await,
                filing(&store, a, jane_a, "<1@x>").await,
                filing(&store, a, jane_a, "<3@x>").await,
                filing(&store, closed, jane_c, "<4@x>").await,
            ];
            let results = commit_all(&store, items).await;
            assert!(matches!(&results[0], Ok(Committed::Filed(p)) if p.notifications.len() == 1));
            assert!(matches!(&results[1], Ok(Committed::Filed(_))));
            assert!(matches!(&results[2], Ok(Committed::Duplicate)));
            assert!(matches!(&results[3], Ok(Committed::Filed(_))));
            assert!(matches!(&results[4], Err(StoreError::ThreadClosed(t)) if *t == closed));

            let view = store.thread(a).await.unwrap();
            let bodies: Vec<&str> = view.messages.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["B", "<1@x>", "<3@x>"]);
            assert_eq!(store.thread(b).await.unwrap().messages.len(), 2);
            assert_eq!(store.thread(closed).await.unwrap().messages.len(), 1);

            // A later batch recognises what the first one filed.
            let again = commit_all(&store, vec![filing(&store, a, jane_a, "<3@x>").await]).await;
            assert!(matches!(&again[0], Ok(Committed::Duplicate)));
            assert_eq!(store.thread(a).await.unwrap().messages.len(), 3);
        }

        /// An item that fails after some of its rows were written (here its ledger row, the last
        /// one) leaves none of them behind — no message, no notification — and the items before
        /// and after it in the batch are filed.
        async fn a_failing_item_is_rolled_back_whole_and_alone(fixture) {
            let store = fixture.store.clone();
            let (t, jane) = thread(&store).await;
            store
                .execute_for_test(
                    "CREATE TRIGGER refuse_bad BEFORE INSERT ON inbound WHEN NEW.header_message_id = '<bad@x>'
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
                )
                .await;
            let before = store.list_notifications(None, Some(t)).await.unwrap().len();
            let items = vec![
                filing(&store, t, jane, "<good-1@x>").await,
                filing(&store, t, jane, "<bad@x>").await,
                filing(&store, t, jane, "<good-2@x>").await,
            ];
            let results = commit_all(&store, items).await;
            assert!(matches!(&results[0], Ok(Committed::Filed(_))));
            assert!(
                matches!(&results[1], Err(StoreError::Invalid(_))),
                "{:?}",
                results[1]
            );
            assert!(matches!(&results[2], Ok(Committed::Filed(_))));

            let view = store.thread(t).await.unwrap();
            let bodies: Vec<&str> = view.messages.iter().map(|m| m.body.as_str()).collect();
            assert_eq!(bodies, ["B", "<good-1@x>", "<good-2@x>"]);
            let seqs: Vec<i64> =
                sqlx::query_scalar("SELECT seq FROM messages WHERE thread_id = $1 ORDER BY seq")
                    .bind(t.0)
                    .fetch_all(store.pool())
                    .await
                    .unwrap();
            assert_eq!(seqs, [1, 2, 3], "no gap where the failed item was");
            let after = store.list_notifications(None, Some(t)).await.unwrap().len();
            assert_eq!(after - before, 2, "one staff notification per filed reply");
        }
    }
}
