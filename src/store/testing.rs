//! Fixtures for unit tests that need a real store: a SQLite file in a temporary directory, and
//! the clinic thread most tests start from (Lee at the clinic, Jane the patient).

use std::sync::Arc;

use super::{Consent, NewParticipant, NewThread, Posted, Store};
use crate::crypto::Keyring;
use crate::domain::{Address, Mode, ParticipantId, Role, ThreadId, Via};

pub(crate) const LEE: &str = "lee@clinic.test";
pub(crate) const JANE: &str = "jane@example.test";

/// A store on a fresh SQLite file; the directory lives as long as the value.
pub(crate) struct TestStore {
    pub store: Store,
    pub keyring: Arc<Keyring>,
    pub dir: tempfile::TempDir,
    /// The store's clock: frozen, and moved only by the test.
    pub clock: crate::clock::Clock,
}

pub(crate) async fn open() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::generate());
    let url = format!("sqlite://{}", dir.path().join("db").display());
    let clock = crate::clock::Clock::frozen();
    let store = Store::open(&url, keyring.clone(), clock.clone())
        .await
        .unwrap();
    TestStore {
        store,
        keyring,
        dir,
        clock,
    }
}

/// Opens a convenience thread from Lee to Jane with `body` as its first message; Jane has
/// consented to convenience mode.
pub(crate) async fn clinic_thread(store: &Store, body: &str) -> Posted {
    store
        .set_consent(Consent {
            address: Address::parse(JANE).unwrap(),
            convenience: true,
            text: "Email is not fully protected.".into(),
            by: "test".into(),
        })
        .await
        .unwrap();
    let person = |address: &str, role| NewParticipant {
        address: Address::parse(address).unwrap(),
        display_name: None,
        role,
    };
    store
        .create_thread(NewThread {
            subject: "S".into(),
            mode: Mode::Convenience,
            author: person(LEE, Role::Staff),
            others: vec![person(JANE, Role::Recipient)],
            body: body.into(),
            via: Via::Cli,
            shared: false,
        })
        .await
        .unwrap()
}

/// Jane's participant id in `thread`.
pub(crate) async fn jane(store: &Store, thread: ThreadId) -> ParticipantId {
    let view = store.thread(thread).await.unwrap();
    view.participants
        .iter()
        .find(|p| p.address.as_str() == JANE)
        .unwrap()
        .id
}

/// Makes every later filing fail inside the commit, as a full disk or a broken database would:
/// a trigger that aborts any insert into `messages`. Everything before the commit still works.
pub(crate) async fn break_filing(store: &Store) {
    store
        .execute_for_test(
            "CREATE TRIGGER broken_filing BEFORE INSERT ON messages
             BEGIN SELECT RAISE(ABORT, 'filing broken by the test'); END",
        )
        .await;
}
