//! The writer thread: the one place anything is written to the SQLite file.
//!
//! Every write of the store is an [`Op`] sent here. The thread takes whatever has queued up —
//! up to [`MAX_BATCH`] operations — runs them on its own connection in one transaction, each
//! in its own savepoint, and commits once: one fsync shared by everything that arrived
//! together (group commit; under load many SMTP sessions and the outbox worker share a commit,
//! alone an operation commits at once). An operation that fails — a thread closed a moment
//! ago, a constraint, even a panic — is rolled back alone and answered with its error; nobody
//! is answered before the commit that holds their operation is durable.
//!
//! Running the statements here, synchronously, on a thread that owns the connection is what
//! makes it fast: sqlx's SQLite driver hands every statement to a worker thread and back, and
//! on a busy two-core machine each hand-off waits for the scheduler (measured, that was most of
//! a commit). Here a batch costs one wake-up however many operations it holds.
//!
//! The thread reports that it is alive: [`Writer::alive`] is false while one batch has been
//! running longer than a given time (a disk that hangs, a lock never released), so the daemon
//! stops telling systemd's watchdog all is well.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;
use tracing::error;

use crate::clock::Clock;
use crate::store::StoreError;
use crate::store::ops::{Done, Op};
use crate::store::writes::apply;

/// Most operations committed together.
pub const MAX_BATCH: usize = 128;
/// How often an idle writer says it is alive.
const IDLE_BEAT: Duration = Duration::from_millis(500);

type Job = (Op, oneshot::Sender<Result<Done, StoreError>>);

/// A handle on the writer thread; shared by every clone of the store.
pub(crate) struct Writer {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    beat: Arc<Beat>,
}

/// When the batch in progress started (milliseconds since `epoch`), 0 when idle.
struct Beat {
    epoch: Instant,
    busy_since: AtomicU64,
}

impl Beat {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

impl Writer {
    /// Opens the writer's connection to `path` and starts its thread.
    /// Every row it writes is stamped with `clock`'s time at its batch's start.
    pub(crate) fn start(path: &Path, clock: Clock) -> Result<Writer, StoreError> {
        let conn = super::open_writer(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let beat = Arc::new(Beat {
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
        });
        let thread_beat = beat.clone();
        let thread = std::thread::Builder::new()
            .name("sealpost-writer".into())
            .spawn(move || serve(conn, rx, &thread_beat, &clock))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Writer {
            jobs: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            beat,
        })
    }

    /// Runs `op`, returning once it is durably committed (or failed).
    pub(crate) async fn run(&self, op: Op) -> Result<Done, StoreError> {
        let (reply, wait) = oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(|jobs| jobs.send((op, reply)).is_ok())
            .unwrap_or(false);
        if !sent {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        wait.await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the writer thread stopped".into())))
    }

    /// Whether the thread is running.
    pub(crate) fn running(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Whether the thread is running and no batch has taken longer than `within`.
    pub(crate) fn alive(&self, within: Duration) -> bool {
        let since = self.beat.busy_since.load(Ordering::Relaxed);
        self.running()
            && (since == 0 || self.beat.now().saturating_sub(since) < within.as_millis() as u64)
    }

    /// Lets the queued operations finish, then ends the thread and closes its connection.
    pub(crate) async fn stop(&self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

fn serve(mut conn: Connection, jobs: mpsc::Receiver<Job>, beat: &Beat, clock: &Clock) {
    loop {
        let first = match jobs.recv_timeout(IDLE_BEAT) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        beat.busy_since.store(beat.now(), Ordering::Relaxed);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().unzip();
        let started = Instant::now();
        let results = commit(&mut conn, &ops, clock.now());
        crate::metrics::observe(
            &crate::metrics::metrics().store_commit,
            [],
            started.elapsed(),
        );
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
        beat.busy_since.store(0, Ordering::Relaxed);
    }
}

/// Runs `ops` in one transaction, each in a savepoint; one result per operation, in order.
fn commit(conn: &mut Connection, ops: &[Op], now: i64) -> Vec<Result<Done, StoreError>> {
    let run = |conn: &mut Connection| -> Result<Vec<Result<Done, StoreError>>, StoreError> {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let sp = tx.savepoint()?;
            let done = catch_unwind(AssertUnwindSafe(|| {
                apply(&*sp as &rusqlite::Connection, op, now)
            }))
            .unwrap_or_else(|_| {
                error!(
                    operation = op.name(),
                    "a write failed with a defect (panic); rolled back"
                );
                Err(StoreError::Corrupt(format!(
                    "{}: internal error (see the log)",
                    op.name()
                )))
            });
            match done {
                Ok(done) => {
                    sp.commit()?;
                    results.push(Ok(done));
                }
                Err(e) => {
                    sp.finish()?; // rolls this operation back, keeps the others
                    results.push(Err(e));
                }
            }
        }
        tx.commit()?;
        Ok(results)
    };
    run(conn).unwrap_or_else(|e| fail_all(ops.len(), e))
}

/// Answers every operation of a batch with the error that stopped the batch as a whole.
fn fail_all(n: usize, e: StoreError) -> Vec<Result<Done, StoreError>> {
    let mut first = Some(e.clone());
    (0..n)
        .map(|_| Err(first.take().unwrap_or_else(|| e.clone())))
        .collect()
}
