//! The store's writes, written once for every engine against [`super::sql::Sql`]: each
//! engine's writer runs them inside its transaction (one savepoint per operation). The
//! remaining ones still live in `sqlite/` and move here one concept at a time, until the
//! dispatch itself ([`crate::store::ops::Op`] to these functions) is engine-neutral too.

pub(crate) mod api;
pub(crate) mod codes;
pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod notices;
pub(crate) mod outbox;
pub(crate) mod people;
pub(crate) mod queue;
pub(crate) mod threads;
pub(crate) mod web;
pub(crate) mod webhooks;
