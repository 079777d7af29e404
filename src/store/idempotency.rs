//! Remembered answers to API requests sent with an `Idempotency-Key`, so that a client that
//! retries after a lost answer gets the same one instead of a second thread or message.

use super::sqlite::write::{Done, Op};
use super::{Store, StoreError};
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

/// The key of one remembered request.
#[derive(Debug, Clone)]
pub(crate) struct IdempotencyKey {
    pub api_key: ApiKeyId,
    pub key: String,
    pub fingerprint: Vec<u8>,
}

impl Store {
    /// Records that a request with this Idempotency-Key is being answered, unless it was seen.
    pub async fn idempotency_begin(
        &self,
        api_key: ApiKeyId,
        key: &str,
        fingerprint: Vec<u8>,
    ) -> Result<Seen, StoreError> {
        match self
            .write(Op::IdempotencyBegin(IdempotencyKey {
                api_key,
                key: key.to_owned(),
                fingerprint,
            }))
            .await?
        {
            Done::Seen(seen) => Ok(seen),
            _ => Err(StoreError::Corrupt(
                "unexpected answer to idempotency-begin".into(),
            )),
        }
    }

    /// Keeps the answer, or forgets the request (`None`: it failed in a way a retry may fix).
    pub async fn idempotency_finish(
        &self,
        api_key: ApiKeyId,
        key: &str,
        answer: Option<(u16, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        self.write(Op::IdempotencyFinish {
            api_key,
            key: key.to_owned(),
            answer,
        })
        .await
        .map(drop)
    }
}
