//! Remembered answers to API requests sent with an `Idempotency-Key`, so that a client that
//! retries after a lost answer gets the same one instead of a second thread or message. An
//! answer may carry personal data (a person as created), so it is sealed like the rest.

use super::ops::{Done, Op};
use super::{Store, StoreError};
use crate::crypto::{Binding, DataKey, KeyId, WrappedKey};
use crate::domain::ApiKeyId;

/// How long an answer is remembered.
pub const KEEP_SECS: i64 = 24 * 3600;

/// What the store knows about a request's Idempotency-Key when it arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// First time: the caller answers it and records the answer.
    New,
    /// Answered before: the same request gets the same answer.
    Answered { status: u16, body: Vec<u8> },
    /// The key was used for a different request.
    Mismatch,
    /// The first request with this key is still being answered.
    InProgress,
}

/// What the writer found: like [`Seen`], with the answer still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    New,
    Answered {
        status: u16,
        sealed: Vec<u8>,
        key_id: i64,
        wrapped: Vec<u8>,
    },
    Mismatch,
    InProgress,
}

/// The key of one remembered request.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKey {
    pub api_key: ApiKeyId,
    pub key: String,
    pub fingerprint: Vec<u8>,
}

/// An answer to keep, sealed.
#[derive(Debug, Clone)]
pub(crate) struct SealedAnswer {
    pub status: u16,
    pub sealed: Vec<u8>,
    pub wrapped: WrappedKey,
}

impl Store {
    /// Records that a request with this Idempotency-Key is being answered, unless it was seen.
    pub async fn idempotency_begin(
        &self,
        api_key: ApiKeyId,
        key: &str,
        fingerprint: Vec<u8>,
    ) -> Result<Seen, StoreError> {
        let found = match self
            .write(Op::IdempotencyBegin(IdempotencyKey {
                api_key,
                key: key.to_owned(),
                fingerprint,
            }))
            .await?
        {
            Done::Found(found) => found,
            _ => {
                return Err(StoreError::Corrupt(
                    "unexpected answer to idempotency-begin".into(),
                ));
            }
        };
        Ok(match found {
            Found::New => Seen::New,
            Found::Mismatch => Seen::Mismatch,
            Found::InProgress => Seen::InProgress,
            Found::Answered {
                status,
                sealed,
                key_id,
                wrapped,
            } => {
                let corrupt = || StoreError::Corrupt(format!("remembered answer of key {api_key}"));
                let wrapped = WrappedKey {
                    key_id: KeyId::try_from(key_id).map_err(|_| corrupt())?,
                    sealed: wrapped,
                };
                let data_key = DataKey::unwrap_idempotent(self.keyring(), api_key.0, &wrapped)
                    .map_err(|_| corrupt())?;
                let body = data_key
                    .open(Binding::IdempotentAnswer(api_key.0), &sealed)
                    .map_err(|_| corrupt())?;
                Seen::Answered { status, body }
            }
        })
    }

    /// Keeps the answer, sealed, or forgets the request (`None`: it failed in a way a retry
    /// may fix).
    pub async fn idempotency_finish(
        &self,
        api_key: ApiKeyId,
        key: &str,
        answer: Option<(u16, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let answer = answer.map(|(status, body)| {
            let data_key = DataKey::generate();
            SealedAnswer {
                status,
                sealed: data_key.seal(Binding::IdempotentAnswer(api_key.0), &body),
                wrapped: data_key.wrap_idempotent(self.keyring(), api_key.0),
            }
        });
        self.write(Op::IdempotencyFinish {
            api_key,
            key: key.to_owned(),
            answer,
        })
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::per_engine;

    per_engine! {
        /// The README's promises, pinned with a clock the test moves: an answer is replayed for a
        /// day and then forgotten; a request left "in progress" by a process that died is given
        /// up after two minutes, never held for a day.
        async fn answers_last_a_day_and_abandoned_requests_two_minutes(t) {
            let key = ApiKeyId(7);
            let begin = |k: &'static str| t.store.idempotency_begin(key, k, vec![1, 2, 3]);
            assert_eq!(begin("a").await.unwrap(), Seen::New);
            t.store
                .idempotency_finish(key, "a", Some((201, b"{}".to_vec())))
                .await
                .unwrap();
            t.clock.advance(KEEP_SECS - 1);
            assert!(matches!(
                begin("a").await.unwrap(),
                Seen::Answered { status: 201, .. }
            ));
            t.clock.advance(2);
            assert_eq!(
                begin("a").await.unwrap(),
                Seen::New,
                "forgotten after a day"
            );

            assert_eq!(begin("b").await.unwrap(), Seen::New);
            t.clock
                .advance(crate::domain::idempotency::ABANDONED_AFTER_SECS - 1);
            assert_eq!(begin("b").await.unwrap(), Seen::InProgress);
            t.clock.advance(1);
            assert_eq!(
                begin("b").await.unwrap(),
                Seen::New,
                "its process died: retried"
            );
        }
    }
}
