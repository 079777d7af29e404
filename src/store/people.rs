//! The directory of people: who they are to the practice, how to reach them, and whether they
//! agreed to convenience mode. Names, dates of birth and mobile numbers are sealed under a
//! data key of each person's own.

use super::model::PersonDetails;
use super::ops::Op;
use super::rows::{PersonRow, parse};
use super::{Consent, PersonView, Store, StoreError};
use crate::crypto::{Binding, DataKey, KeyId, Keyring, WrappedKey};
use crate::domain::{Address, PersonId, PersonKind};

/// A person's entry ready to write: the personal data sealed, and the person's data key
/// wrapped when it is new.
#[derive(Debug, Clone)]
pub(crate) struct SealedPerson {
    pub id: PersonId,
    pub address: Address,
    /// Set when the person had no data key yet (a new entry, or one made by a consent).
    pub new_key: Option<WrappedKey>,
    pub kind: PersonKind,
    pub title: Option<String>,
    pub practice: Option<String>,
    pub notifications: bool,
    pub status: crate::domain::PersonStatus,
    pub name: Option<Vec<u8>>,
    pub birth_date: Option<Vec<u8>>,
    pub mobile: Option<Vec<u8>>,
}

fn field(
    key: &DataKey,
    id: PersonId,
    name: &'static str,
    value: &Option<String>,
) -> Option<Vec<u8>> {
    value
        .as_ref()
        .map(|v| key.seal(Binding::PersonField(id.0, name), v.as_bytes()))
}

impl PersonRow {
    fn key(&self, keyring: &Keyring) -> Result<Option<DataKey>, StoreError> {
        let (Some(key_id), Some(wrapped)) = (self.key_id, &self.wrapped_key) else {
            return Ok(None);
        };
        let key_id = KeyId::try_from(key_id)
            .map_err(|_| StoreError::Corrupt(format!("key id of person {:016x}", self.id)))?;
        let wrapped = WrappedKey {
            key_id,
            sealed: wrapped.clone(),
        };
        DataKey::unwrap_person(keyring, self.id, &wrapped)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("key of person {:016x}: {e}", self.id)))
    }

    fn view(self, keyring: &Keyring) -> Result<PersonView, StoreError> {
        let key = self.key(keyring)?;
        let standing = self.standing();
        let id = self.id;
        let open =
            |name: &'static str, sealed: &Option<Vec<u8>>| -> Result<Option<String>, StoreError> {
                let Some(sealed) = sealed else {
                    return Ok(None);
                };
                let key = key.as_ref().ok_or_else(|| {
                    StoreError::Corrupt(format!("person {id:016x} has data but no key"))
                })?;
                let plain = key
                    .open(Binding::PersonField(id, name), sealed)
                    .map_err(|e| StoreError::Corrupt(format!("{name} of person {id:016x}: {e}")))?;
                String::from_utf8(plain)
                    .map(Some)
                    .map_err(|_| StoreError::Corrupt(format!("{name} of person {id:016x}")))
            };
        Ok(PersonView {
            id: PersonId(self.id),
            address: Address::parse(&self.address)
                .map_err(|_| StoreError::Corrupt(format!("address of person {:016x}", self.id)))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            details: PersonDetails {
                kind: parse("kind", &self.kind)?,
                name: open("name", &self.name_sealed)?,
                title: self.title.clone(),
                practice: self.practice.clone(),
                birth_date: open("birth_date", &self.birth_date_sealed)?,
                mobile: open("mobile", &self.mobile_sealed)?,
                notifications: self.notifications == "on",
                status: parse("status", &self.status)?,
            },
            convenience: self.convenience.as_deref().map(|c| c == "yes"),
            convenience_at: self.convenience_at,
            convenience_text: self.convenience_text,
            convenience_by: self.convenience_by,
            standing,
        })
    }
}

impl Store {
    /// Records a person's choice about convenience mode. Withdrawing it also turns their
    /// convenience notifications that have not gone out yet into secure ones.
    pub async fn set_consent(&self, consent: Consent) -> Result<(), StoreError> {
        self.write(Op::SetConsent(consent)).await.map(drop)
    }

    /// The person with this address, if the directory has them.
    pub async fn person(&self, address: &Address) -> Result<Option<PersonView>, StoreError> {
        self.backend()
            .person(address)
            .await?
            .map(|row| row.view(self.keyring()))
            .transpose()
    }

    /// Everyone in the directory (of one kind), by address.
    pub async fn people(&self, kind: Option<PersonKind>) -> Result<Vec<PersonView>, StoreError> {
        self.backend()
            .people(kind)
            .await?
            .into_iter()
            .map(|row| row.view(self.keyring()))
            .collect()
    }

    /// Adds a person, or replaces what the directory says about them (their consent stays as
    /// it is). Returns the entry as stored.
    pub async fn put_person(
        &self,
        address: &Address,
        details: &PersonDetails,
    ) -> Result<PersonView, StoreError> {
        let existing = self.backend().person(address).await?;
        let (id, key, new_key) = match &existing {
            Some(row) => match row.key(self.keyring())? {
                Some(key) => (PersonId(row.id), key, None),
                None => {
                    let key = DataKey::generate();
                    let wrapped = key.wrap_person(self.keyring(), row.id);
                    (PersonId(row.id), key, Some(wrapped))
                }
            },
            None => {
                let id = PersonId::random();
                let key = DataKey::generate();
                let wrapped = key.wrap_person(self.keyring(), id.0);
                (id, key, Some(wrapped))
            }
        };
        let sealed = SealedPerson {
            id,
            address: address.clone(),
            new_key,
            kind: details.kind,
            title: details.title.clone(),
            practice: details.practice.clone(),
            notifications: details.notifications,
            status: details.status,
            name: field(&key, id, "name", &details.name),
            birth_date: field(&key, id, "birth_date", &details.birth_date),
            mobile: field(&key, id, "mobile", &details.mobile),
        };
        self.write(Op::PutPerson(Box::new(sealed))).await?;
        self.person(address)
            .await?
            .ok_or_else(|| StoreError::UnknownPerson(address.clone()))
    }

    /// Removes a person who is no longer a participant of any thread (their sealed data goes
    /// with their key).
    pub async fn remove_person(&self, address: &Address) -> Result<(), StoreError> {
        self.write(Op::RemovePerson(address.clone()))
            .await
            .map(drop)
    }
}
