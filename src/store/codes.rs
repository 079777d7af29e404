//! The web view's 24-hour rule: codes asked for from a link, and the outbox of text messages
//! that carry them. A code itself is never stored (see [`crate::crypto::web_code`]); a text
//! message's words are made when it is sent, with the number looked up then.

use super::ops::CodeOp;
use super::ops::{Done, Op};
use super::{Store, StoreError, unexpected};
use crate::crypto::{KeyId, TokenClaims};
use crate::domain::{Address, PersonId, ThreadId};

/// A code to make: where it was asked from, and what it is computed from.
#[derive(Debug, Clone)]
pub struct NewCode {
    /// SHA-256 of the link token.
    pub link_hash: Vec<u8>,
    pub key_id: KeyId,
    pub nonce: Vec<u8>,
    /// How long it may be used (and its text message retried).
    pub valid_secs: i64,
    /// A keyed hash of the client's address that asked (for the per-client limit).
    pub client: Vec<u8>,
}

/// The latest code asked from a link.
#[derive(Debug, Clone)]
pub struct Code {
    pub id: i64,
    pub key_id: KeyId,
    pub nonce: Vec<u8>,
    pub expires_at: i64,
    pub passed_at: Option<i64>,
}

/// A text message claimed for sending, with what it needs.
#[derive(Debug, Clone)]
pub struct DueSms {
    pub id: i64,
    /// The person's address (where the `email` provider sends the code).
    pub address: Address,
    /// Their mobile number from the directory, opened; `None` if it was removed since.
    pub mobile: Option<String>,
    /// The code; `None` if the keyring lost its key.
    pub code: Option<String>,
    pub attempts: i64,
    pub give_up_at: i64,
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsOutcome {
    Sent,
    RetryAt(i64),
    /// Not sent, and no use retrying (refused, or the code expired).
    GaveUp,
}

/// One attempt to send a text message.
#[derive(Debug, Clone)]
pub struct SmsAttempt {
    pub at: i64,
    /// What went wrong (a provider's status or a connection error; never the text).
    pub error: Option<String>,
    pub outcome: SmsOutcome,
}

/// A text message as `sealpost sms list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmsView {
    pub id: i64,
    pub address: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: String,
    pub sent_at: Option<String>,
}

impl Store {
    /// Whether a newer link than the one `link` names went out to `address`.
    pub async fn newer_link_sent(
        &self,
        address: &Address,
        link: &TokenClaims,
    ) -> Result<bool, StoreError> {
        self.backend()
            .newer_link_sent(address.as_str(), link.participant_id, link.issued_at)
            .await
    }

    /// The latest code asked from the link whose SHA-256 is `link_hash`.
    pub async fn latest_code(&self, link_hash: &[u8]) -> Result<Option<Code>, StoreError> {
        let Some((id, key_id, nonce, expires_at, passed_at)) =
            self.backend().latest_code(link_hash).await?
        else {
            return Ok(None);
        };
        Ok(Some(Code {
            id,
            key_id: KeyId::try_from(key_id)
                .map_err(|_| StoreError::Corrupt(format!("key id of code {id}")))?,
            nonce,
            expires_at,
            passed_at,
        }))
    }

    /// Records that a code was asked for from a link of `thread`: with `code`, it is made and
    /// its text message queued (unless one was made for the same link within
    /// `throttle_secs`); without, only the refusal is audited. Returns the code's id (0 when
    /// none).
    pub async fn code_asked(
        &self,
        person: PersonId,
        thread: ThreadId,
        code: Option<NewCode>,
        throttle_secs: i64,
    ) -> Result<u64, StoreError> {
        match self
            .write(Op::Code(CodeOp::Asked {
                person,
                thread,
                code,
                throttle_secs,
            }))
            .await?
        {
            Done::Count(id) => Ok(id),
            _ => Err(unexpected("web-code-asked")),
        }
    }

    /// Spends a code without it passing (a wrong guess at a code that would lift a lock).
    pub async fn code_void(&self, id: i64) -> Result<(), StoreError> {
        self.write(Op::Code(CodeOp::Void(id))).await.map(drop)
    }

    /// Records that the right code was typed.
    pub async fn code_passed(
        &self,
        id: i64,
        person: PersonId,
        thread: ThreadId,
    ) -> Result<(), StoreError> {
        self.write(Op::Code(CodeOp::Passed { id, person, thread }))
            .await
            .map(drop)
    }

    /// The claimed text messages `ids` (see [`super::queue::Queue::TextMessages`]), each with
    /// its number and code.
    pub async fn due_text_messages(&self, ids: &[i64]) -> Result<Vec<DueSms>, StoreError> {
        let mut due = Vec::with_capacity(ids.len());
        for &id in ids {
            let Some((id, address, key_id, nonce, attempts, give_up_at)) =
                self.backend().due_sms(id).await?
            else {
                continue;
            };
            let address = Address::parse(&address)
                .map_err(|_| StoreError::Corrupt(format!("address of text message {id}")))?;
            let mobile = self.person(&address).await?.and_then(|p| p.details.mobile);
            let code = KeyId::try_from(key_id)
                .ok()
                .and_then(|k| crate::crypto::web_code::code(self.keyring(), k, &nonce));
            due.push(DueSms {
                id,
                address,
                mobile,
                code,
                attempts,
                give_up_at,
            });
        }
        Ok(due)
    }

    /// Records attempts and releases their claims.
    pub async fn record_sms(&self, attempts: Vec<(i64, SmsAttempt)>) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        self.write(Op::Code(CodeOp::RecordSms(attempts)))
            .await
            .map(drop)
    }

    /// The latest `limit` text messages, newest first.
    pub async fn sms_messages(&self, limit: i64) -> Result<Vec<SmsView>, StoreError> {
        Ok(self
            .backend()
            .sms_list(limit)
            .await?
            .into_iter()
            .map(
                |(id, address, status, attempts, last_error, created_at, sent_at)| SmsView {
                    id,
                    address,
                    status,
                    attempts,
                    last_error,
                    created_at: crate::clock::rfc3339(created_at),
                    sent_at: sent_at.map(crate::clock::rfc3339),
                },
            )
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::per_engine;
    use crate::store::testing::{JANE, clinic_thread};

    fn new_code(link: u8, key_id: KeyId, client: u8) -> NewCode {
        NewCode {
            link_hash: vec![link; 32],
            key_id,
            nonce: vec![link; 16],
            valid_secs: 600,
            client: vec![client; 32],
        }
    }

    per_engine! {
        async fn codes_are_throttled_per_link_and_capped_per_client_and_person(t) {
            let posted = clinic_thread(&t.store, "Hello").await;
            let jane = t
                .store
                .person(&Address::parse(JANE).unwrap())
                .await
                .unwrap()
                .unwrap();
            let key = t.keyring.current_id();
            let ask = |link: u8, client: u8| {
                t.store.code_asked(
                    jane.id,
                    posted.thread_id,
                    Some(new_code(link, key, client)),
                    60,
                )
            };
            let first = ask(1, 1).await.unwrap();
            assert!(first > 0);
            // The same link within a minute: the code already sent, nothing new.
            assert_eq!(ask(1, 1).await.unwrap(), first);
            for link in 2..=3 {
                assert!(ask(link, 1).await.unwrap() > 0);
            }
            // A fourth from the same client within the hour is refused, whatever the link…
            assert_eq!(ask(4, 1).await.unwrap(), 0);
            // …while the person, elsewhere, still gets codes, up to their own hourly limit.
            for link in 4..=10 {
                let client = 2 + (link - 4) / 3;
                assert!(ask(link, client).await.unwrap() > 0, "link {link}");
            }
            assert_eq!(ask(11, 9).await.unwrap(), 0, "ten an hour for the person");
            // An hour later there are codes again.
            t.clock.advance(3601);
            assert!(ask(12, 1).await.unwrap() > 0);
            // A wrong number sends nothing either.
            assert_eq!(
                t.store
                    .code_asked(jane.id, posted.thread_id, None, 60)
                    .await
                    .unwrap(),
                0
            );

            // Eleven text messages are due, each with the code its nonce gives.
            let now = t.store.clock().now();
            let store = &t.store;
            let claim = |limit| async move {
                let ids = store
                    .claim(crate::store::queue::Queue::TextMessages, "me", limit, 60)
                    .await
                    .unwrap();
                store.due_text_messages(&ids).await.unwrap()
            };
            let due = claim(20).await;
            assert_eq!(due.len(), 11);
            for (m, link) in due.iter().zip((1u8..=10).chain([12])) {
                assert_eq!(
                    m.code,
                    crate::crypto::web_code::code(&t.keyring, key, &[link; 16])
                );
                assert_eq!(m.mobile, None);
                assert_eq!(m.address.as_str(), JANE);
            }
            // Claimed ones are not handed out twice; a sent one is done, a retried one comes back.
            assert!(claim(10).await.is_empty());
            t.store
                .record_sms(vec![
                    (
                        due[0].id,
                        SmsAttempt {
                            at: now,
                            error: None,
                            outcome: SmsOutcome::Sent,
                        },
                    ),
                    (
                        due[1].id,
                        SmsAttempt {
                            at: now,
                            error: Some("the provider answered 503".into()),
                            outcome: SmsOutcome::RetryAt(now),
                        },
                    ),
                ])
                .await
                .unwrap();
            let again = claim(10).await;
            assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), [due[1].id]);
            assert_eq!(again[0].attempts, 1);
            let listed = t.store.sms_messages(20).await.unwrap();
            assert_eq!(listed.iter().filter(|m| m.status == "sent").count(), 1);
        }
    }
}
