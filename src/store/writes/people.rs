//! The directory: people, their details (sealed), and their consent to convenience mode.

use super::events::event;
use crate::domain::{Address, PersonId};
use crate::store::people::SealedPerson;
use crate::store::sql::{Sql, args};
use crate::store::{Consent, StoreError};

/// Writes a person's directory entry (not their consent). The entry's id and key were read
/// before sealing: if someone else created or keyed the same person meanwhile, the sealed
/// fields would not open, so the write is refused and may be tried again.
pub(crate) fn put_person(conn: &dyn Sql, p: &SealedPerson, now: i64) -> Result<(), StoreError> {
    let existing: Option<(i64, bool)> = conn
        .row(
            &format!(
                "SELECT id, wrapped_key IS NOT NULL FROM people WHERE address = $1{}",
                conn.for_update()
            ),
            args![p.address.as_str()],
        )?
        .map(|r| Ok::<_, StoreError>((r.int(0)?, r.int(1)? != 0)))
        .transpose()?;
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
    conn.exec(
        "INSERT INTO people (id, address, created_at, updated_at, kind, title, practice,
                             notifications, status, key_id, wrapped_key, name_sealed,
                             birth_date_sealed, mobile_sealed)
         VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (address) DO UPDATE SET updated_at = $3, kind = $4, title = $5,
             practice = $6, notifications = $7, status = $8,
             key_id = COALESCE($9, people.key_id),
             wrapped_key = COALESCE($10, people.wrapped_key),
             name_sealed = $11, birth_date_sealed = $12, mobile_sealed = $13",
        args![
            p.id.0,
            p.address.as_str(),
            now,
            p.kind.as_str(),
            &p.title,
            &p.practice,
            if p.notifications { "on" } else { "off" },
            p.status.as_str(),
            key_id,
            wrapped,
            &p.name,
            &p.birth_date,
            &p.mobile
        ],
    )?;
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
pub(crate) fn remove_person(conn: &dyn Sql, address: &Address, now: i64) -> Result<(), StoreError> {
    let id: Option<i64> = conn.int(
        &format!(
            "SELECT id FROM people WHERE address = $1{}",
            conn.for_update()
        ),
        args![address.as_str()],
    )?;
    let Some(id) = id else {
        return Err(StoreError::UnknownPerson(address.clone()));
    };
    let threads = conn
        .row(
            "SELECT COUNT(*) FROM participants WHERE address = $1 AND revoked_at IS NULL",
            args![address.as_str()],
        )?
        .map_or(Ok(0), |r| r.int(0))?;
    if threads > 0 {
        return Err(StoreError::PersonInUse {
            address: address.clone(),
            threads,
        });
    }
    conn.exec(
        "UPDATE participants SET person_id = NULL WHERE person_id = $1",
        args![id],
    )?;
    conn.exec("DELETE FROM people WHERE id = $1", args![id])?;
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
pub(crate) fn set_consent(conn: &dyn Sql, c: &Consent, now: i64) -> Result<(), StoreError> {
    let choice = if c.convenience { "yes" } else { "no" };
    let person = conn
        .row(
            "INSERT INTO people (id, address, created_at, updated_at, convenience, convenience_at,
                                 convenience_text, convenience_by)
             VALUES ($1, $2, $3, $3, $4, $3, $5, $6)
             ON CONFLICT (address) DO UPDATE SET updated_at = $3, convenience = $4,
                 convenience_at = $3, convenience_text = $5, convenience_by = $6
             RETURNING id",
            args![
                PersonId::random().0,
                c.address.as_str(),
                now,
                choice,
                &c.text,
                &c.by
            ],
        )?
        .ok_or_else(|| StoreError::Corrupt("a consent was not written".into()))?
        .int(0)?;
    let downgraded = if c.convenience {
        0
    } else {
        conn.exec(
            "UPDATE outbox SET mode = 'secure'
             WHERE mode = 'convenience' AND kind = 'message'
               AND status IN ('queued', 'deferred') AND claimed_by IS NULL
               AND participant_id IN (SELECT id FROM participants
                                      WHERE address = $1 AND role = 'recipient')",
            args![c.address.as_str()],
        )?
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
