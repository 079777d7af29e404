//! Threads, participants and messages: opening a thread, posting, closing, removing a
//! participant, reading.

use super::model::{Conversation, NewThread, Posted, ThreadFilter, ThreadSummary, ThreadView};
use super::ops::{Done, Op};
use super::rows::{ThreadCountsRow, parse};
use super::sealing::{self, Answers};
use super::{Store, StoreError, unexpected};
use crate::domain::conversation::{self, Recipient};
use crate::domain::{Address, ParticipantId, Role, ThreadId, Via};

impl Store {
    /// Opens the conversations a new message makes, each with that message first: one per
    /// recipient outside the practice, unless `new.shared` ([`crate::domain::conversation`]),
    /// with the staff recipients in each. All of them or none are committed, with the
    /// notifications to every other participant.
    pub async fn start_conversations(
        &self,
        new: NewThread,
    ) -> Result<Vec<Conversation>, StoreError> {
        if new.body.trim().is_empty() {
            return Err(StoreError::Invalid("the message body is empty".into()));
        }
        let mut named = vec![&new.author.address];
        for p in &new.others {
            if named.contains(&&p.address) {
                return Err(StoreError::Invalid(format!(
                    "{} is named more than once",
                    p.address
                )));
            }
            named.push(&p.address);
        }
        let staff_kinds = self.backend().staff_people(&new.others).await?;
        let recipients: Vec<Recipient> = new
            .others
            .iter()
            .map(|p| Recipient {
                staff: p.role == Role::Staff || staff_kinds.contains(&p.address),
            })
            .collect();
        let groups = conversation::split(&recipients, new.shared);
        let mut sealed = Vec::with_capacity(groups.len());
        let mut to = Vec::with_capacity(groups.len());
        for group in &groups {
            let mut people = vec![(
                new.author.address.clone(),
                new.author.display_name.clone(),
                new.author.role,
            )];
            people.extend(
                group
                    .iter()
                    .map(|i| &new.others[*i])
                    .map(|p| (p.address.clone(), p.display_name.clone(), p.role)),
            );
            let mut thread = sealing::seal_thread(
                self.keyring(),
                &new.subject,
                new.mode,
                &people,
                &new.body,
                new.via,
            );
            thread.shared =
                conversation::is_shared(group.iter().filter(|i| !recipients[**i].staff).count());
            sealed.push(thread);
            to.push(
                group
                    .iter()
                    .map(|i| new.others[*i].address.clone())
                    .collect(),
            );
        }
        match self.write(Op::CreateThreads(sealed)).await? {
            Done::PostedAll(all) => Ok(all
                .into_iter()
                .zip(to)
                .map(|(posted, to)| Conversation { posted, to })
                .collect()),
            _ => Err(unexpected("create-threads")),
        }
    }

    /// Opens one conversation with its first message (see [`Store::start_conversations`]);
    /// refused when the rule would make several (several recipients outside the practice, not
    /// `shared`): the caller meant one conversation and must not get a different one.
    pub async fn create_thread(&self, new: NewThread) -> Result<Posted, StoreError> {
        let mut made = self.start_conversations(new).await?;
        if made.len() != 1 {
            return Err(StoreError::Invalid(
                "several recipients outside the practice make several conversations".into(),
            ));
        }
        Ok(made.remove(0).posted)
    }

    /// Posts a message into an open thread as the participant with address `from`.
    pub async fn post_message(
        &self,
        thread: ThreadId,
        from: &Address,
        body: &str,
        via: Via,
    ) -> Result<Posted, StoreError> {
        self.post_answering(thread, from, body, via, Answers::Nothing)
            .await
    }

    /// Posts a message that answers another (see [`Answers`]; what it names is checked
    /// against the thread, and dropped if it is not there).
    pub async fn post_answering(
        &self,
        thread: ThreadId,
        from: &Address,
        body: &str,
        via: Via,
        answers: Answers,
    ) -> Result<Posted, StoreError> {
        if body.trim().is_empty() {
            return Err(StoreError::Invalid("the message body is empty".into()));
        }
        let mut post = self.sealer(thread).await?.post(from, body, via);
        post.message = post.message.answering(answers);
        match self.write(Op::Post(post)).await? {
            Done::Posted(p) => Ok(p),
            _ => Err(unexpected("post")),
        }
    }

    /// Closes a thread: no more posts, and email replies get a content-free notice instead of
    /// being filed.
    pub async fn close_thread(&self, thread: ThreadId) -> Result<(), StoreError> {
        self.write(Op::CloseThread(thread)).await.map(drop)
    }

    /// Re-opens a closed thread: posts and email replies are taken again.
    pub async fn reopen_thread(&self, thread: ThreadId) -> Result<(), StoreError> {
        self.write(Op::ReopenThread(thread)).await.map(drop)
    }

    /// Removes a participant from a thread, at once: their queued and deferred notifications
    /// are cancelled, their reply tokens stop working (refused at `RCPT TO`, and re-checked
    /// when a reply is committed). The row stays, for the messages they wrote. Returns how
    /// many notifications were cancelled.
    pub async fn remove_participant(
        &self,
        thread: ThreadId,
        address: &Address,
    ) -> Result<u64, StoreError> {
        match self
            .write(Op::RemoveParticipant(thread, address.clone()))
            .await?
        {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected("remove-participant")),
        }
    }

    /// Adds a participant to an open thread; they are notified of messages posted from now on
    /// (not of earlier ones). Someone already in the thread, or removed from it, is refused
    /// ([`StoreError::AlreadyParticipant`]); so is a second person outside the practice
    /// unless `shared` says the conversation is to be read by both
    /// ([`crate::domain::conversation::may_add`]).
    pub async fn add_participant(
        &self,
        thread: ThreadId,
        who: &super::model::NewParticipant,
        shared: bool,
    ) -> Result<ParticipantId, StoreError> {
        let participant = self.sealer(thread).await?.participant(
            &who.address,
            who.display_name.as_deref(),
            who.role,
        );
        let id = participant.id;
        self.write(Op::AddParticipant(thread, participant, shared))
            .await
            .map(|_| id)
    }

    /// A whole thread with its subject, names and messages opened.
    /// The thread as `viewer` may see it (see [`super::projection`]); unknown to a viewer
    /// who takes no part in it.
    pub async fn thread_for(
        &self,
        thread: ThreadId,
        viewer: super::projection::Viewer,
    ) -> Result<ThreadView, StoreError> {
        self.thread(thread)
            .await?
            .seen_by(viewer)
            .ok_or(StoreError::UnknownThread(thread))
    }

    pub async fn thread(&self, thread: ThreadId) -> Result<ThreadView, StoreError> {
        let (row, participants, messages, withdrawn, held) =
            self.backend().thread_whole(thread).await?;
        let reads = self
            .backend()
            .thread_reads(thread)
            .await?
            .into_iter()
            .map(|(m, p, at)| super::model::ReadReceipt {
                message: crate::domain::MessageId(m),
                participant: ParticipantId(p),
                at,
            })
            .collect();
        let key = sealing::thread_key(self.keyring(), &row)?;
        Ok(ThreadView {
            id: thread,
            subject: sealing::open_subject(&key, &row)?,
            mode: parse("mode", &row.mode)?,
            closed: row.status == "closed",
            created_at: row.created_at,
            held,
            participants: participants
                .into_iter()
                .map(|p| sealing::open_participant(&key, p))
                .collect::<Result<_, _>>()?,
            messages: messages
                .into_iter()
                .map(|m| sealing::open_message(thread, &key, m))
                .collect::<Result<_, _>>()?,
            withdrawn: withdrawn
                .into_iter()
                .map(|w| sealing::open_withdrawn(thread, &key, w))
                .collect::<Result<_, _>>()?,
            reads,
            shared: row.shared,
        })
    }

    /// Every thread, most recently active first.
    pub async fn list_threads(&self) -> Result<Vec<ThreadSummary>, StoreError> {
        self.summaries(self.backend().threads().await?)
    }

    /// One page of threads, newest first (see [`ThreadFilter`]).
    pub async fn threads_page(
        &self,
        filter: &ThreadFilter,
    ) -> Result<Vec<ThreadSummary>, StoreError> {
        self.summaries(self.backend().threads_page(filter).await?)
    }

    fn summaries(&self, rows: Vec<ThreadCountsRow>) -> Result<Vec<ThreadSummary>, StoreError> {
        rows.into_iter()
            .map(|r| {
                let key = sealing::thread_key(self.keyring(), &r.thread)?;
                Ok(ThreadSummary {
                    id: r.thread.thread(),
                    subject: sealing::open_subject(&key, &r.thread)?,
                    mode: parse("mode", &r.thread.mode)?,
                    closed: r.thread.status == "closed",
                    created_at: r.thread.created_at,
                    seq: r.thread.seq.unwrap_or_default(),
                    participants: r.participants,
                    messages: r.messages,
                    held: r.held,
                    last_activity_at: r.thread.last_activity_at,
                })
            })
            .collect()
    }
}
