//! API keys: made, listed, revoked, and checked on every request. Only the SHA-256 of a key's
//! secret is stored; checking compares digests in constant time.

use sha2::{Digest, Sha256};

use super::ops::Op;
use super::{Store, StoreError};
use crate::domain::{ApiKeyId, ApiScope};

/// The prefix of every key, so a leaked one is recognisable (secret scanners, logs).
pub const KEY_PREFIX: &str = "sp_";

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyView {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: ApiScope,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A new key: the only time its whole text exists.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    /// `sp_<id>_<secret>`: what the client sends as `Authorization: Bearer …`.
    pub key: String,
}

/// A key to insert.
#[derive(Debug, Clone)]
pub(crate) struct ApiKeyRecord {
    pub id: ApiKeyId,
    pub name: String,
    pub scope: ApiScope,
    pub secret_hash: Vec<u8>,
}

fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Splits `sp_<id>_<secret>` into its id and secret; `None` for anything that is not one of
/// ours (a secret is 52 base32 letters: 256 bits).
fn split(key: &str) -> Option<(ApiKeyId, &str)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = secret.len() == 52 && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then_some((id.parse().ok()?, secret))
}

impl Store {
    /// Makes a key; its text is returned once and never stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        scope: ApiScope,
    ) -> Result<NewApiKey, StoreError> {
        let id = ApiKeyId::random();
        let secret = data_encoding::BASE32_NOPAD
            .encode(&crate::crypto::random_bytes::<32>())
            .to_ascii_lowercase();
        self.write(Op::CreateApiKey(ApiKeyRecord {
            id,
            name: name.to_owned(),
            scope,
            secret_hash: digest(&secret),
        }))
        .await?;
        Ok(NewApiKey {
            id,
            key: format!("{KEY_PREFIX}{id}_{secret}"),
        })
    }

    /// Every key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKeyView>, StoreError> {
        self.backend()
            .api_keys()
            .await?
            .into_iter()
            .map(|(id, name, scope, created_at, revoked_at)| {
                Ok(ApiKeyView {
                    id: ApiKeyId(id),
                    name,
                    scope: super::rows::parse("scope", &scope)?,
                    created_at,
                    revoked_at,
                })
            })
            .collect()
    }

    /// Revokes a key: every request with it is refused from now on.
    pub async fn revoke_api_key(&self, id: ApiKeyId) -> Result<(), StoreError> {
        self.write(Op::RevokeApiKey(id)).await.map(drop)
    }

    /// The scope of a valid, unrevoked key; `None` for anything else (unknown, revoked,
    /// malformed, a wrong secret — one answer for all).
    pub async fn check_api_key(
        &self,
        key: &str,
    ) -> Result<Option<(ApiKeyId, ApiScope)>, StoreError> {
        let Some((id, secret)) = split(key) else {
            return Ok(None);
        };
        let Some((stored, scope, revoked)) = self.backend().api_key(id).await? else {
            return Ok(None);
        };
        let matches = crate::crypto::constant_time_eq(&stored, &digest(secret));
        if !matches || revoked.is_some() {
            return Ok(None);
        }
        Ok(Some((id, super::rows::parse("scope", &scope)?)))
    }
}
