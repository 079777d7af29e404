//! The directory and who may call: people, their standing and passcodes, API keys.

use crate::domain::Address;
use crate::store::StoreError;

use super::Pool;
use crate::store::rows::PersonRow;

/// A person's directory entry, by address.
pub(crate) async fn person(
    pool: &Pool,
    address: &Address,
) -> Result<Option<PersonRow>, StoreError> {
    Ok(sqlx::query_as("SELECT * FROM people WHERE address = $1")
        .bind(address.as_str())
        .fetch_optional(pool)
        .await?)
}

/// Everyone in the directory, of one kind or all, by address.
pub(crate) async fn people(
    pool: &Pool,
    kind: Option<crate::domain::PersonKind>,
) -> Result<Vec<PersonRow>, StoreError> {
    Ok(
        sqlx::query_as("SELECT * FROM people WHERE ($1 IS NULL OR kind = $1) ORDER BY address")
            .bind(kind.map(crate::domain::PersonKind::as_str))
            .fetch_all(pool)
            .await?,
    )
}

/// Every API key (id, name, scope, created_at, revoked_at), newest first.
pub(crate) async fn api_keys(
    pool: &Pool,
) -> Result<Vec<(i64, String, String, i64, Option<i64>)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, name, scope, created_at, revoked_at FROM api_keys
         ORDER BY created_at DESC, id",
    )
    .fetch_all(pool)
    .await?)
}

/// One API key's secret hash, scope and revocation time.
pub(crate) async fn api_key(
    pool: &Pool,
    id: crate::domain::ApiKeyId,
) -> Result<Option<(Vec<u8>, String, Option<i64>)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT secret_hash, scope, revoked_at FROM api_keys WHERE id = $1")
            .bind(id.0)
            .fetch_optional(pool)
            .await?,
    )
}

/// A person's passcode hash.
pub(crate) async fn passcode_hash(pool: &Pool, person: i64) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT passcode_hash FROM people WHERE id = $1")
            .bind(person)
            .fetch_optional(pool)
            .await?
            .flatten(),
    )
}

/// Display names written in clear by schema versions before 3: (participant, thread, name).
pub(crate) async fn names_in_clear(pool: &Pool) -> Result<Vec<(i64, i64, String)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, thread_id, display_name FROM participants WHERE display_name IS NOT NULL",
    )
    .fetch_all(pool)
    .await?)
}

/// Participant addresses with characters outside printable ASCII (decided here, not in SQL:
/// the engines' pattern languages differ, and this runs once, at an upgrade).
pub(crate) async fn non_ascii_addresses(pool: &Pool) -> Result<Vec<(i64, String)>, StoreError> {
    let all: Vec<(i64, String)> = sqlx::query_as("SELECT id, address FROM participants")
        .fetch_all(pool)
        .await?;
    Ok(all
        .into_iter()
        .filter(|(_, address)| address.chars().any(|c| !(' '..='~').contains(&c)))
        .collect())
}

/// Which of `people` the directory has as staff.
pub(crate) async fn staff_people(
    pool: &Pool,
    people: &[crate::store::NewParticipant],
) -> Result<Vec<Address>, StoreError> {
    let mut staff = Vec::new();
    for p in people {
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM people WHERE address = $1")
            .bind(p.address.as_str())
            .fetch_optional(pool)
            .await?;
        if kind.as_deref() == Some("staff") {
            staff.push(p.address.clone());
        }
    }
    Ok(staff)
}

/// A person's standing with the web view's identity check.
pub(crate) async fn person_standing(
    pool: &Pool,
    person: crate::domain::PersonId,
) -> Result<Option<crate::domain::lockout::Standing>, StoreError> {
    Ok(
        sqlx::query_as::<_, PersonRow>("SELECT * FROM people WHERE id = $1")
            .bind(person.0)
            .fetch_optional(pool)
            .await?
            .map(|row| row.standing()),
    )
}
