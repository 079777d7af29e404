//! The directory of people: for now, who agreed to convenience mode.

use super::rows::PersonRow;
use super::sqlite::read;
use super::sqlite::write::Op;
use super::{Consent, PersonView, Store, StoreError};
use crate::domain::{Address, PersonId};

impl PersonRow {
    fn view(self) -> Result<PersonView, StoreError> {
        Ok(PersonView {
            id: PersonId(self.id),
            address: Address::parse(&self.address)
                .map_err(|_| StoreError::Corrupt(format!("address of person {}", self.id)))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            convenience: self.convenience.as_deref().map(|c| c == "yes"),
            convenience_at: self.convenience_at,
            convenience_text: self.convenience_text,
            convenience_by: self.convenience_by,
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
        read::person(self.pool(), address)
            .await?
            .map(PersonRow::view)
            .transpose()
    }
}
