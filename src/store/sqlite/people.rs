//! The directory: people, their details (sealed), and their consent to convenience mode.

use crate::domain::{Address, PersonId};
use crate::store::people::SealedPerson;
use crate::store::writes::events::event;
use crate::store::{Consent, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

/// Writes a person's directory entry (not their consent). The entry's id and key were read
/// before sealing: if someone else created or keyed the same person meanwhile, the sealed
/// fields would not open, so the write is refused and may be tried again.
pub(super) fn put_person(conn: &Connection, p: &SealedPerson, now: i64) -> Result<(), StoreError> {
    let existing: Option<(i64, bool)> = conn
        .prepare_cached("SELECT id, wrapped_key IS NOT NULL FROM people WHERE address = ?1")?
        .query_row([p.address.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
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
    conn.prepare_cached(
        "INSERT INTO people (id, address, created_at, updated_at, kind, title, practice,
                             notifications, status, key_id, wrapped_key, name_sealed,
                             birth_date_sealed, mobile_sealed)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (address) DO UPDATE SET updated_at = ?3, kind = ?4, title = ?5,
             practice = ?6, notifications = ?7, status = ?8,
             key_id = COALESCE(?9, key_id), wrapped_key = COALESCE(?10, wrapped_key),
             name_sealed = ?11, birth_date_sealed = ?12, mobile_sealed = ?13",
    )?
    .execute(params![
        p.id.0,
        p.address.as_str(),
        now,
        p.kind.as_str(),
        p.title,
        p.practice,
        if p.notifications { "on" } else { "off" },
        p.status.as_str(),
        key_id,
        wrapped,
        p.name,
        p.birth_date,
        p.mobile
    ])?;
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
pub(super) fn remove_person(
    conn: &Connection,
    address: &Address,
    now: i64,
) -> Result<(), StoreError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM people WHERE address = ?1")?
        .query_row([address.as_str()], |r| r.get(0))
        .optional()?;
    let Some(id) = id else {
        return Err(StoreError::UnknownPerson(address.clone()));
    };
    let threads: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM participants WHERE address = ?1 AND revoked_at IS NULL",
        )?
        .query_row([address.as_str()], |r| r.get(0))?;
    if threads > 0 {
        return Err(StoreError::PersonInUse {
            address: address.clone(),
            threads,
        });
    }
    conn.prepare_cached("UPDATE participants SET person_id = NULL WHERE person_id = ?1")?
        .execute([id])?;
    conn.prepare_cached("DELETE FROM people WHERE id = ?1")?
        .execute([id])?;
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
pub(crate) fn set_consent(conn: &Connection, c: &Consent, now: i64) -> Result<(), StoreError> {
    let choice = if c.convenience { "yes" } else { "no" };
    let person = conn
        .prepare_cached(
            "INSERT INTO people (id, address, created_at, updated_at, convenience, convenience_at,
                             convenience_text, convenience_by)
         VALUES (?1, ?2, ?3, ?3, ?4, ?3, ?5, ?6)
         ON CONFLICT (address) DO UPDATE SET updated_at = ?3, convenience = ?4,
             convenience_at = ?3, convenience_text = ?5, convenience_by = ?6
         RETURNING id",
        )?
        .query_row(
            params![
                PersonId::random().0,
                c.address.as_str(),
                now,
                choice,
                c.text,
                c.by
            ],
            |r| r.get::<_, i64>(0),
        )?;
    let downgraded = if c.convenience {
        0
    } else {
        conn.prepare_cached(
            "UPDATE outbox SET mode = 'secure'
             WHERE mode = 'convenience' AND kind = 'message'
               AND status IN ('queued', 'deferred') AND claimed_by IS NULL
               AND participant_id IN (SELECT id FROM participants
                                      WHERE address = ?1 AND role = 'recipient')",
        )?
        .execute([c.address.as_str()])?
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
