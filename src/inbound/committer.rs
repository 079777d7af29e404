//! Group commit: one task owns inbound writes and commits whatever has queued up together.
//!
//! Every SMTP session (and the IMAP poller) hands its decided message here and waits. The task
//! takes all waiting messages — up to [`MAX_BATCH`] — writes them in one transaction with one
//! fsync, and answers each. Under load many sessions share a commit; alone, a message commits
//! at once. Nobody is answered before the commit that holds their message is durable.

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::store::{Committed, Inbound, Store, StoreError};

/// Largest number of messages committed together.
pub const MAX_BATCH: usize = 128;

type Job = (Inbound, oneshot::Sender<Result<Committed, StoreError>>);

/// A handle for submitting inbound outcomes; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Starts the committing thread. It ends when every handle is dropped. Fails only when
    /// the operating system refuses a thread.
    pub fn start(store: Store) -> std::io::Result<Committer> {
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let commits = async move {
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let (items, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                let results = store.commit_inbound(items).await;
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
        };
        // On a thread of its own: each of a commit's statements is a hand-off to SQLite's
        // thread and back, and on the shared runtime every "back" waited in line behind the SMTP
        // sessions' parsing and sealing. Its own single-threaded runtime answers at once.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("sealpost-commit".into())
            .spawn(move || runtime.block_on(commits))?;
        Ok(Committer { tx })
    }

    /// Commits one inbound outcome, returning once it is durable (or failed).
    pub async fn commit(&self, item: Inbound) -> Result<Committed, StoreError> {
        let (reply, wait) = oneshot::channel();
        if self.tx.send((item, reply)).await.is_err() {
            error!("the inbound committer has stopped");
            return Err(StoreError::Invalid(
                "the inbound committer has stopped".into(),
            ));
        }
        wait.await.unwrap_or_else(|_| {
            Err(StoreError::Invalid(
                "the inbound committer has stopped".into(),
            ))
        })
    }
}
