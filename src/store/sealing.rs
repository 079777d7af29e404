//! Sealing what the store writes and opening what it reads, with the keyring the store was
//! opened with. Nothing outside the store sees a data key: a caller that must seal something
//! large away from the async workers (an inbound message) gets a [`Sealer`] for the thread,
//! which seals and does nothing else.

use super::StoreError;
use super::model::{HeldEnvelope, MessageView, ParticipantView};
use super::rows::{MessageRow, ParticipantRow, ThreadRow, parse};
use crate::crypto::{Binding, DataKey, Keyring, WrappedKey};
use crate::domain::{Address, HoldReason, MessageId, Mode, ParticipantId, Role, ThreadId, Via};

/// A message ready to insert: its id is chosen and its body sealed (the id is part of the
/// body's additional authenticated data).
#[derive(Debug, Clone)]
pub struct SealedMessage {
    pub id: MessageId,
    pub author: ParticipantId,
    body: Vec<u8>,
    pub via: Via,
    /// What sender authentication found, for a reply that came by email (see
    /// `inbound::auth::Verdict::summary`).
    pub auth: Option<String>,
    /// What it answers, as far as known (checked against the thread when it is filed).
    pub answers: Answers,
}

/// What a new message answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Answers {
    /// Nothing known: it starts an exchange of its own.
    #[default]
    Nothing,
    /// A message of the thread (a reply written under it on the web view).
    Message(MessageId),
    /// The message a notification carried (an email reply's In-Reply-To).
    Notification(crate::domain::NotificationId),
}

impl SealedMessage {
    /// The same message, answering `answers`.
    pub fn answering(self, answers: Answers) -> SealedMessage {
        SealedMessage { answers, ..self }
    }

    /// The sealed body, as stored.
    pub(crate) fn body(&self) -> &[u8] {
        &self.body
    }

    /// The same message by `author` (a staff post's author is found in the transaction).
    pub(crate) fn by(&self, author: ParticipantId) -> SealedMessage {
        SealedMessage {
            author,
            ..self.clone()
        }
    }
}

/// Seals content for one thread. Made by [`super::Store::sealer`]; cheap to clone and to move
/// to another thread.
#[derive(Clone)]
pub struct Sealer {
    thread: ThreadId,
    key: DataKey,
}

/// The raw bytes of an inbound message, sealed for its ledger row.
#[derive(Debug, Clone)]
pub struct SealedRaw(pub(crate) Vec<u8>);

impl Sealer {
    pub(crate) fn new(thread: ThreadId, key: DataKey) -> Sealer {
        Sealer { thread, key }
    }

    /// Seals `body` as a new message of the thread by `author`. Line endings become `\n`.
    pub fn message(&self, author: ParticipantId, body: &str, via: Via) -> SealedMessage {
        let id = MessageId::random();
        let body = body.replace("\r\n", "\n");
        SealedMessage {
            id,
            author,
            body: self
                .key
                .seal(Binding::MessageBody(self.thread, id), body.as_bytes()),
            via,
            auth: None,
            answers: Answers::Nothing,
        }
    }

    /// Seals a staff post by `from`, whose participant is looked up (and checked) in the
    /// transaction that inserts it: the body's seal does not name its author.
    /// A new participant of this thread, their name sealed.
    pub(crate) fn participant(
        &self,
        address: &Address,
        name: Option<&str>,
        role: Role,
    ) -> SealedParticipant {
        let id = ParticipantId::random();
        SealedParticipant {
            id,
            address: address.clone(),
            name: name.map(|n| self.participant_name(id, n)),
            role,
        }
    }

    pub(crate) fn post(&self, from: &Address, body: &str, via: Via) -> SealedPost {
        SealedPost {
            thread: self.thread,
            from: from.clone(),
            message: self.message(ParticipantId(0), body, via),
        }
    }

    /// Seals the raw bytes of inbound message `ledger_id` (kept with a filed reply, for audit).
    pub fn inbound_raw(&self, ledger_id: i64, raw: &[u8]) -> SealedRaw {
        SealedRaw(
            self.key
                .seal(Binding::InboundRaw(self.thread, ledger_id), raw),
        )
    }

    fn participant_name(&self, participant: ParticipantId, name: &str) -> Vec<u8> {
        self.key.seal(
            Binding::ParticipantName(self.thread, participant),
            name.as_bytes(),
        )
    }
}

/// A participant of a new thread, its name sealed.
pub(crate) struct SealedParticipant {
    pub id: ParticipantId,
    pub address: Address,
    pub name: Option<Vec<u8>>,
    pub role: Role,
}

/// A new thread, sealed: the author is the first participant and wrote `first`.
pub(crate) struct SealedThread {
    pub thread: ThreadId,
    pub mode: Mode,
    pub wrapped: WrappedKey,
    pub subject: Vec<u8>,
    pub participants: Vec<SealedParticipant>,
    pub first: SealedMessage,
    /// Several people outside the practice read it together, on purpose.
    pub shared: bool,
}

/// A staff post, sealed; its author is looked up by address in the transaction.
pub(crate) struct SealedPost {
    pub thread: ThreadId,
    pub from: Address,
    pub message: SealedMessage,
}

/// Seals a new thread under a fresh key.
pub(crate) fn seal_thread(
    keyring: &Keyring,
    subject: &str,
    mode: Mode,
    people: &[(Address, Option<String>, Role)],
    body: &str,
    via: Via,
) -> SealedThread {
    let thread = ThreadId::random();
    let key = DataKey::generate();
    let wrapped = key.wrap(keyring, thread);
    let sealer = Sealer::new(thread, key);
    let participants: Vec<SealedParticipant> = people
        .iter()
        .map(|(address, name, role)| {
            let id = ParticipantId::random();
            SealedParticipant {
                id,
                address: address.clone(),
                name: name.as_deref().map(|n| sealer.participant_name(id, n)),
                role: *role,
            }
        })
        .collect();
    let first = sealer.message(participants[0].id, body, via);
    SealedThread {
        thread,
        mode,
        wrapped,
        subject: sealer
            .key
            .seal(Binding::ThreadSubject(thread), subject.as_bytes()),
        participants,
        first,
        shared: false,
    }
}

/// Seals a display name of an existing participant (migration of names stored in clear).
pub(crate) fn seal_name(
    thread: ThreadId,
    key: &DataKey,
    participant: ParticipantId,
    name: &str,
) -> Vec<u8> {
    Sealer::new(thread, key.clone()).participant_name(participant, name)
}

/// A message to hold, sealed under a key of its own and ready to commit.
#[derive(Debug, Clone)]
pub struct SealedHeld {
    wrapped: WrappedKey,
    envelope: Vec<u8>,
    raw: Vec<u8>,
    size: i64,
    pub reason: HoldReason,
    pub participant: Option<ParticipantId>,
    /// What sender authentication found, when it ran before the message was held.
    pub auth: Option<String>,
    /// Where it came from, for the quotas: the SMTP client's address (none over IMAP or from a
    /// trusted relay) and the sender's domain.
    pub client: Option<String>,
    pub sender_domain: Option<String>,
}

impl SealedHeld {
    /// Seals `raw` and its envelope for the ledger row `id` under a fresh key.
    pub fn seal(
        keyring: &Keyring,
        id: i64,
        envelope: &HeldEnvelope,
        raw: &[u8],
        reason: HoldReason,
        participant: Option<ParticipantId>,
    ) -> SealedHeld {
        let key = DataKey::generate();
        let envelope = serde_json::to_vec(envelope).expect("an envelope always serialises");
        SealedHeld {
            wrapped: key.wrap_held(keyring, id),
            envelope: key.seal(Binding::HeldEnvelope(id), &envelope),
            raw: key.seal(Binding::HeldRaw(id), raw),
            size: raw.len() as i64,
            reason,
            participant,
            auth: None,
            client: None,
            sender_domain: None,
        }
    }

    /// The same, recording where it came from (see [`crate::domain::held`]).
    pub fn from_source(
        mut self,
        client: Option<String>,
        sender_domain: Option<String>,
    ) -> SealedHeld {
        self.client = client;
        self.sender_domain = sender_domain;
        self
    }

    /// The same, recording what sender authentication found.
    pub fn with_auth(mut self, auth: Option<String>) -> SealedHeld {
        self.auth = auth;
        self
    }

    pub(crate) fn columns(&self) -> (i64, &[u8], &[u8], &[u8], i64) {
        (
            i64::from(self.wrapped.key_id),
            &self.wrapped.sealed,
            &self.envelope,
            &self.raw,
            self.size,
        )
    }
}

/// A thread's data key, from its row.
pub(crate) fn thread_key(keyring: &Keyring, row: &ThreadRow) -> Result<DataKey, StoreError> {
    let thread = row.thread();
    DataKey::unwrap(keyring, thread, &row.wrapped()?).map_err(|e| StoreError::unsealed(thread, e))
}

fn utf8(bytes: Vec<u8>, what: impl FnOnce() -> String) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|_| StoreError::Corrupt(what()))
}

pub(crate) fn open_subject(key: &DataKey, row: &ThreadRow) -> Result<String, StoreError> {
    let thread = row.thread();
    let plain = key
        .open(Binding::ThreadSubject(thread), &row.subject)
        .map_err(|e| StoreError::unsealed(thread, e))?;
    utf8(plain, || format!("subject of thread {thread}"))
}

fn open_name(
    thread: ThreadId,
    participant: ParticipantId,
    key: &DataKey,
    sealed: Option<&[u8]>,
) -> Result<Option<String>, StoreError> {
    let Some(sealed) = sealed else {
        return Ok(None);
    };
    let plain = key
        .open(Binding::ParticipantName(thread, participant), sealed)
        .map_err(|e| StoreError::unsealed(thread, e))?;
    utf8(plain, || {
        format!("display name of participant {participant}")
    })
    .map(Some)
}

pub(crate) fn open_participant(
    key: &DataKey,
    row: ParticipantRow,
) -> Result<ParticipantView, StoreError> {
    let id = ParticipantId(row.id);
    Ok(ParticipantView {
        id,
        address: Address::parse(&row.address)
            .map_err(|_| StoreError::Corrupt(format!("participant address of {id}")))?,
        display_name: open_name(
            ThreadId(row.thread_id),
            id,
            key,
            row.display_name_sealed.as_deref(),
        )?,
        role: parse("role", &row.role)?,
        revoked: row.revoked_at.is_some(),
        consented: row.convenience.as_deref().map(|c| c == "yes"),
        archived: row.archived_at.is_some(),
    })
}

/// What is left of a message taken back: its author's name opens, there is no body.
pub(crate) fn open_withdrawn(
    thread: ThreadId,
    key: &DataKey,
    row: super::rows::WithdrawnRow,
) -> Result<super::model::Withdrawn, StoreError> {
    let id = MessageId(row.id);
    let author = ParticipantId(row.author_id);
    Ok(super::model::Withdrawn {
        id,
        author,
        author_address: Address::parse(&row.address)
            .map_err(|_| StoreError::Corrupt(format!("author of message {id}")))?,
        author_name: open_name(thread, author, key, row.display_name_sealed.as_deref())?,
        created_at: row.created_at,
        withdrawn_at: row.cancelled_at,
        answers: row.answers_id.map(MessageId),
    })
}

pub(crate) fn open_message(
    thread: ThreadId,
    key: &DataKey,
    row: MessageRow,
) -> Result<MessageView, StoreError> {
    let id = MessageId(row.id);
    let body = key
        .open(Binding::MessageBody(thread, id), &row.body)
        .map_err(|e| StoreError::unsealed(thread, e))?;
    let author = ParticipantId(row.author_id);
    Ok(MessageView {
        id,
        author,
        author_address: Address::parse(&row.address)
            .map_err(|_| StoreError::Corrupt(format!("author of message {id}")))?,
        author_name: open_name(thread, author, key, row.display_name_sealed.as_deref())?,
        body: utf8(body, || format!("body of message {id}"))?,
        via: parse("via", &row.via)?,
        created_at: row.created_at,
        auth: row.auth,
        answers: row.answers_id.map(MessageId),
    })
}

/// Opens a sealed message body alone (what a participant was sent).
pub(crate) fn open_body(
    thread: ThreadId,
    key: &DataKey,
    id: i64,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let plain = key
        .open(Binding::MessageBody(thread, MessageId(id)), sealed)
        .map_err(|e| StoreError::unsealed(thread, e))?;
    utf8(plain, || format!("body of message {}", MessageId(id)))
}
