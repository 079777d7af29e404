//! What the secure web view keeps: sessions (known by a hash of their cookie), failed identity
//! checks and lockout, and which messages a participant has seen.

use super::ops::WebOp;
use super::ops::{Done, Op};
use super::{Store, StoreError, unexpected};
use crate::domain::lockout::Reservation;
use crate::domain::message::CancelRefusal;
use crate::domain::{Address, MessageId, ParticipantId, PersonId, ThreadId};

/// A signed-in session, as found by its cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSession {
    pub person: PersonId,
    pub address: Address,
    /// The participant whose link opened it, and their thread.
    pub participant: ParticipantId,
    pub thread: ThreadId,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    /// Reserves one of the person's attempts before what they typed is compared: at most
    /// `max_failures` checks are ever compared before a lock, however many arrive at once.
    pub async fn web_reserve_check(
        &self,
        person: PersonId,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        match self
            .write(Op::Web(WebOp::Reserve {
                person,
                max_failures,
            }))
            .await?
        {
            Done::Reserve(r) => Ok(r),
            _ => Err(unexpected("web-reserve-check")),
        }
    }

    /// A reserved check failed; returns the attempts left (0: the person is locked out now,
    /// for a while that grows each time; staff are told when a lock comes back).
    pub async fn web_check_failed(
        &self,
        person: PersonId,
        thread: ThreadId,
        max_failures: u32,
    ) -> Result<u64, StoreError> {
        match self
            .write(Op::Web(WebOp::CheckFailed {
                person,
                thread,
                max_failures,
            }))
            .await?
        {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("web-check-failed")),
        }
    }

    /// A code passed from a link issued at `link_issued` lifts a temporary lock of `person`
    /// made before the link was sent (nothing else changes).
    pub async fn web_lift_lock(
        &self,
        person: PersonId,
        thread: ThreadId,
        link_issued: i64,
    ) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::LiftLock {
            person,
            thread,
            link_issued,
        }))
        .await
        .map(drop)
    }

    /// Opens a session known by `id_hash` for the person behind `participant`, unless they
    /// were locked out meanwhile ([`StoreError::Locked`]).
    pub async fn web_sign_in(
        &self,
        id_hash: Vec<u8>,
        person: PersonId,
        participant: ParticipantId,
    ) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::SignIn {
            id_hash,
            person,
            participant,
        }))
        .await
        .map(drop)
    }

    /// The live session known by `id_hash`: not ended, used within `idle` seconds, younger
    /// than `max` seconds (by the store's clock). A session found is marked as used (at most
    /// once a minute).
    pub async fn web_session(
        &self,
        id_hash: &[u8],
        idle: i64,
        max: i64,
    ) -> Result<Option<WebSession>, StoreError> {
        let now = self.clock().now();
        let Some((person, participant, thread, address, created_at, last_seen_at, ended)) =
            self.backend().web_session(id_hash).await?
        else {
            return Ok(None);
        };
        if ended.is_some() || now - last_seen_at > idle || now - created_at > max {
            return Ok(None);
        }
        // Every page of a session checks the lock too: a lock ends sessions, and a session
        // made in the same instant as a lock must not slip through.
        if self
            .backend()
            .person_standing(PersonId(person))
            .await?
            .is_none_or(|s| s.locked_at(now))
        {
            return Ok(None);
        }
        if now - last_seen_at >= 60 {
            self.write(Op::Web(WebOp::Touch(id_hash.to_vec()))).await?;
        }
        Ok(Some(WebSession {
            person: PersonId(person),
            address: Address::parse(&address)
                .map_err(|_| StoreError::Corrupt(format!("address of person {person:016x}")))?,
            participant: ParticipantId(participant),
            thread: ThreadId(thread),
            created_at,
            last_seen_at,
        }))
    }

    /// The session known by `id_hash` whatever its state (ended, idle too long): with whether
    /// it was ended (signed out, or its person locked). For taking up what a person was doing
    /// when their session ran out.
    pub async fn web_session_record(
        &self,
        id_hash: &[u8],
    ) -> Result<Option<(WebSession, bool)>, StoreError> {
        let Some((person, participant, thread, address, created_at, last_seen_at, ended)) =
            self.backend().web_session(id_hash).await?
        else {
            return Ok(None);
        };
        Ok(Some((
            WebSession {
                person: PersonId(person),
                address: Address::parse(&address)
                    .map_err(|_| StoreError::Corrupt(format!("address of person {person:016x}")))?,
                participant: ParticipantId(participant),
                thread: ThreadId(thread),
                created_at,
                last_seen_at,
            },
            ended.is_some(),
        )))
    }

    /// Ends a session.
    pub async fn web_sign_out(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::SignOut(id_hash.to_vec())))
            .await
            .map(drop)
    }

    /// Records that `participant` saw `messages` (the first time is kept).
    pub async fn mark_read(
        &self,
        participant: ParticipantId,
        messages: &[MessageId],
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.write(Op::Web(WebOp::Read {
            participant,
            messages: messages.iter().map(|m| m.0).collect(),
        }))
        .await
        .map(drop)
    }

    /// Takes back `message`, written by `author`, while nobody acted on it.
    pub async fn cancel_message(
        &self,
        thread: ThreadId,
        message: MessageId,
        author: ParticipantId,
    ) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::Cancel {
            thread,
            message,
            author,
        }))
        .await
        .map(drop)
    }

    /// Why `author` may not take `message` back now, or `None` when they may (the web view's
    /// button; taking it back checks again, in the same transaction).
    pub async fn cancel_refusal(
        &self,
        thread: ThreadId,
        message: MessageId,
        author: ParticipantId,
    ) -> Result<Option<CancelRefusal>, StoreError> {
        let facts = self.backend().cancel_facts(thread, message, author).await?;
        Ok(facts.and_then(|f| crate::domain::message::may_cancel(&f).err()))
    }

    /// A participant archives a conversation for themselves (`archived`), or moves it back to
    /// their inbox.
    pub async fn archive(
        &self,
        participant: ParticipantId,
        archived: bool,
    ) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::Archive {
            participant,
            archived,
        }))
        .await
        .map(drop)
    }

    /// Records that someone at the practice read `messages` outside the web view: `reader` is
    /// `cli`, or `api:<key id>`. A message read can no longer be taken back by its author.
    pub async fn record_access(
        &self,
        messages: &[MessageId],
        reader: &str,
    ) -> Result<(), StoreError> {
        if messages.is_empty() {
            return Ok(());
        }
        self.write(Op::Web(WebOp::Accessed {
            messages: messages.iter().map(|m| m.0).collect(),
            reader: reader.to_owned(),
        }))
        .await
        .map(drop)
    }

    /// Sets a person's web-view passcode (hashed with Argon2id here), or clears it.
    pub async fn set_passcode(
        &self,
        address: &Address,
        passcode: Option<&str>,
        by: &str,
    ) -> Result<(), StoreError> {
        let hash = passcode
            .map(crate::crypto::passcode::hash)
            .transpose()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.write(Op::Web(WebOp::SetPasscode {
            address: address.clone(),
            hash,
            by: by.to_owned(),
        }))
        .await
        .map(drop)
    }

    /// The stored passcode hash of a person, if staff set one.
    pub async fn passcode_hash(&self, person: PersonId) -> Result<Option<String>, StoreError> {
        self.backend().passcode_hash(person.0).await
    }

    /// Lifts a lockout (`by`: who did, for the audit trail).
    pub async fn unlock_person(&self, address: &Address, by: &str) -> Result<(), StoreError> {
        self.write(Op::Web(WebOp::Unlock {
            address: address.clone(),
            by: by.to_owned(),
        }))
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::testing::{self, JANE, per_engine};

    per_engine! {
        /// The README's promise, pinned with a clock the test moves: a session ends after 15
        /// minutes unused and after 12 hours however busy; use within the idle limit keeps it.
        async fn a_session_ends_when_idle_and_at_its_maximum_age(t) {
            let posted = testing::clinic_thread(&t.store, "Hello").await;
            let jane = testing::jane(&t.store, posted.thread_id).await;
            let person = t
                .store
                .person(&crate::domain::Address::parse(JANE).unwrap())
                .await
                .unwrap()
                .unwrap()
                .id;
            let (idle, max) = (15 * 60, 12 * 3600);
            let live = |hash: &'static [u8]| {
                let store = t.store.clone();
                async move { store.web_session(hash, idle, max).await.unwrap().is_some() }
            };
            t.store
                .web_sign_in(b"idle".to_vec(), person, jane)
                .await
                .unwrap();
            t.clock.advance(idle);
            // Unused for exactly the limit: still live (and this look is a use).
            assert!(live(b"idle").await);
            t.clock.advance(idle + 1);
            assert!(
                !live(b"idle").await,
                "unused for longer than the limit: ended"
            );

            t.store
                .web_sign_in(b"busy".to_vec(), person, jane)
                .await
                .unwrap();
            // Used every 14 minutes, it lives until 12 hours after sign-in and not a second more.
            let mut age = 0;
            while age + 14 * 60 <= max {
                t.clock.advance(14 * 60);
                age += 14 * 60;
                assert!(live(b"busy").await, "used after {age} s");
            }
            t.clock.advance(max - age);
            assert!(live(b"busy").await, "at exactly 12 hours");
            t.clock.advance(1);
            assert!(!live(b"busy").await, "past 12 hours");
        }
    }
}
