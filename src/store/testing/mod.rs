//! Fixtures for unit tests that need a real store: a SQLite file in a temporary directory, and
//! the clinic thread most tests start from (Lee at the clinic, Jane the patient).

use std::sync::Arc;

#[cfg(feature = "postgres")]
pub(crate) mod postgres;

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

/// A database engine a store test runs on (see [`per_engine!`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    #[cfg(feature = "sqlite")]
    Sqlite,
}

/// A store on the default engine, for tests about something else than the store.
pub(crate) async fn open() -> TestStore {
    open_on(Engine::Sqlite).await
}

/// A store on a fresh database of `engine`.
pub(crate) async fn open_on(engine: Engine) -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let keyring = Arc::new(Keyring::generate());
    let url = match engine {
        #[cfg(feature = "sqlite")]
        Engine::Sqlite => format!("sqlite://{}", dir.path().join("db").display()),
    };
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

/// Declares store tests once and runs each on every engine this build has: each
/// `async fn name(t) { … }` becomes `sqlite::name` (and, with a second engine, one test more
/// per engine), `t` being a fresh [`TestStore`] on that engine.
macro_rules! per_engine {
    ($( $(#[$meta:meta])* async fn $name:ident($t:ident) $body:block )*) => {
        $(
            $(#[$meta])*
            async fn $name($t: $crate::store::testing::TestStore) $body
        )*
        #[cfg(feature = "sqlite")]
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let t = $crate::store::testing::open_on(
                        $crate::store::testing::Engine::Sqlite,
                    )
                    .await;
                    super::$name(t).await
                }
            )*
        }
    };
}
pub(crate) use per_engine;

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
