//! Group commit: one thread owns inbound writes and commits whatever has queued up together.
//!
//! Every SMTP session (and the IMAP poller) hands its decided message here and waits. The
//! thread takes all waiting messages — up to [`MAX_BATCH`] — writes them in one transaction with
//! one fsync, and answers each. Under load many sessions share a commit; alone, a message
//! commits at once. Nobody is answered before the commit that holds their message is durable.

use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::store::{Committed, Inbound, InboundWriter, Store, StoreError};

/// Largest number of messages committed together.
pub const MAX_BATCH: usize = 128;

type Job = (Inbound, oneshot::Sender<Result<Committed, StoreError>>);

/// Why the committer could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open its database connection: {0}")]
    Store(#[from] StoreError),
    #[error("cannot start its thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// A handle for submitting inbound outcomes; cheap to clone.
#[derive(Clone)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl Committer {
    /// Opens the committer's own database connection and starts its thread, which ends when
    /// every handle is dropped; [`Finished`] waits for that.
    pub fn start(store: Store) -> Result<(Committer, Finished), StartError> {
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 4);
        let writer = store.inbound_writer()?;
        // A plain thread that blocks: on the disk, and on the channel between batches. The
        // writer's statements run right here, so a batch costs one wake-up, not one per
        // statement.
        let thread = std::thread::Builder::new()
            .name("sealpost-commit".into())
            .spawn(move || commit_batches(writer, rx))?;
        Ok((Committer { tx }, Finished(thread)))
    }

    /// Commits one inbound outcome, returning once it is durable (or failed).
    pub async fn commit(&self, item: Inbound) -> Result<Committed, StoreError> {
        let (reply, wait) = oneshot::channel();
        if self.tx.send((item, reply)).await.is_err() {
            error!("the inbound committer has stopped");
            return Err(StoreError::Unavailable(
                "the inbound committer has stopped".into(),
            ));
        }
        wait.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the inbound committer has stopped".into(),
            ))
        })
    }
}

/// The committer's thread, to wait for at shutdown.
pub struct Finished(std::thread::JoinHandle<()>);

impl Finished {
    /// Waits until the thread has answered its last batch and closed its connection, which
    /// happens once every [`Committer`] handle is gone. Waiting for it before the rest of the
    /// store closes means the last connection to close is the pool's, which folds the
    /// write-ahead log back into the database file.
    pub async fn wait(self) {
        let _ = tokio::task::spawn_blocking(move || self.0.join()).await;
    }
}

fn commit_batches(mut writer: InboundWriter, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let (items, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let results = writer.commit(&items);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
