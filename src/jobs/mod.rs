//! Durable background work, run one way: the outbox, webhook deliveries, text messages and
//! scheduled jobs are queues ([`crate::store::queue`]) that a [`runner`] drains for a
//! [`Work`], claiming with a lease, recording outcomes, and sleeping until the next row is due;
//! singleton parts (the IMAP poller) run while they hold a [`lease`]. Every claim and lease is
//! made by a [`Holder`]: this run of this instance.

pub mod holder;
pub mod lease;
pub mod runner;
pub mod scheduler;

pub use holder::{Holder, HolderError};
pub use runner::{Work, run};
