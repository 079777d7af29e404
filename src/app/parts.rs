//! The daemon's parts, declared in one list: each has a name (what logs and a failure say),
//! a way to start, and whether the daemon can go on without it. `bind` builds the list;
//! `run` starts every part and watches them. A new background part is one more entry.

use std::future::Future;
use std::pin::Pin;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a part gets when it starts.
pub(super) struct Running {
    /// Cancelled when the daemon drains: the part finishes what it has in hand and returns.
    pub stop: CancellationToken,
    /// Where a listener tracks its sessions, so the drain waits for them.
    pub sessions: TaskTracker,
}

type Start = Box<dyn FnOnce(Running) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// One part of the running daemon.
pub(super) struct Part {
    pub name: &'static str,
    /// Without it the daemon cannot do its job: if it stops on its own, the daemon stops too
    /// and systemd restarts it. A part that is not critical is logged as stopped and the
    /// daemon carries on.
    pub critical: bool,
    start: Start,
}

impl Part {
    pub fn new<F, Fut>(name: &'static str, critical: bool, start: F) -> Part
    where
        F: FnOnce(Running) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Part {
            name,
            critical,
            start: Box::new(move |running| Box::pin(start(running))),
        }
    }

    /// The part's work, to spawn.
    pub fn start(self, running: Running) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        (self.start)(running)
    }
}
