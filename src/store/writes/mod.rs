//! The store's writes, written once for every engine against [`super::sql::Sql`]: each
//! engine's writer runs [`apply`] for every operation, inside its transaction (one savepoint
//! per operation). What they receive is sealed already (the store's facade seals with the
//! thread's key before it sends an operation), so nothing here sees content in clear.
//!
//! Every operation is written as if another writer could run between its statements (see
//! "Concurrent writers" in [`crate::store`]): numbers from counters, claims in one statement,
//! first-comers by unique keys, and a row an operation decides on read with
//! [`Sql::for_update`].

pub(crate) mod api;
pub(crate) mod codes;
pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod inbound;
pub(crate) mod notices;
pub(crate) mod outbox;
pub(crate) mod people;
pub(crate) mod queue;
pub(crate) mod threads;
pub(crate) mod web;
pub(crate) mod webhooks;

use super::StoreError;
use super::ops::{Done, Op};
use super::sql::Sql;
#[cfg(test)]
use super::sql::args;

/// Runs one operation on `conn` (a savepoint of the batch's transaction).
pub(crate) fn apply(conn: &dyn Sql, op: &Op, now: i64) -> Result<Done, StoreError> {
    match op {
        Op::CreateThreads(ts) => ts
            .iter()
            .map(|t| threads::create_thread(conn, t, now))
            .collect::<Result<_, _>>()
            .map(Done::PostedAll),
        Op::Post(p) => threads::post(conn, p, now).map(Done::Posted),
        Op::CloseThread(t) => threads::close_thread(conn, *t, "closed", now).map(|_| Done::Nothing),
        Op::ReopenThread(t) => threads::close_thread(conn, *t, "open", now).map(|_| Done::Nothing),
        Op::RemoveParticipant(t, a) => {
            threads::remove_participant(conn, *t, a, now).map(Done::Count)
        }
        Op::AddParticipant(t, p, shared) => {
            threads::add_participant(conn, *t, p, *shared, now).map(|_| Done::Nothing)
        }
        Op::CreateWebhook(w) => webhooks::create(conn, w, now).map(|_| Done::Nothing),
        Op::RemoveWebhook(id) => webhooks::remove(conn, *id, now).map(Done::Count),
        Op::RecordWebhookAttempts(a) => webhooks::record(conn, a).map(|_| Done::Nothing),
        Op::Web(op) => web::apply(conn, op, now),
        Op::Code(op) => codes::apply(conn, op, now),
        Op::Inbound(item) => inbound::inbound(conn, item, now).map(Done::Committed),
        Op::Claim {
            queue,
            holder,
            limit,
            lease_secs,
        } => queue::claim(conn, *queue, holder, *limit, *lease_secs, now).map(Done::Ids),
        Op::Release { queue, holder, ids } => {
            queue::release(conn, *queue, holder, ids).map(|_| Done::Nothing)
        }
        Op::TakeBack { prefix } => queue::take_back(conn, prefix).map(Done::Count),
        Op::HoldLease { name, holder, secs } => {
            queue::hold_lease(conn, name, holder, *secs, now).map(Done::Held)
        }
        Op::ReleaseLease { name, holder } => {
            queue::release_lease(conn, name, holder).map(|_| Done::Nothing)
        }
        Op::Schedule(job) => queue::schedule(conn, job, now).map(Done::Count),
        Op::SettleScheduled { id, outcome, next } => {
            queue::settle_scheduled(conn, *id, outcome, next.as_ref(), now).map(|_| Done::Nothing)
        }
        Op::Housekeep(h) => queue::housekeep(conn, h).map(Done::Count),
        Op::FixMessageIds(c) => outbox::fix_message_ids(conn, c).map(Done::MessageIds),
        Op::RecordAttempts(a) => outbox::record_attempts(conn, a, now).map(|_| Done::Nothing),
        Op::RejectHeld { id, by } => {
            inbound::reject_held(conn, *id, by, now).map(|_| Done::Nothing)
        }
        Op::SetConsent(c) => people::set_consent(conn, c, now).map(|_| Done::Nothing),
        Op::PutPerson(p) => people::put_person(conn, p, now).map(|_| Done::Nothing),
        Op::IdempotencyBegin(k) => api::idempotency_begin(conn, k, now).map(Done::Found),
        Op::IdempotencyFinish {
            api_key,
            key,
            answer,
        } => api::idempotency_finish(conn, *api_key, key, answer.as_ref()).map(|_| Done::Nothing),
        Op::CreateApiKey(k) => api::create_api_key(conn, k, now).map(|_| Done::Nothing),
        Op::RevokeApiKey(id) => api::revoke_api_key(conn, *id, now).map(|_| Done::Nothing),
        Op::RemovePerson(a) => people::remove_person(conn, a, now).map(|_| Done::Nothing),
        Op::SealNames(names) => threads::seal_names(conn, names).map(|_| Done::Nothing),
        Op::SetAddresses(addresses) => {
            for (id, address) in addresses {
                threads::set_address(conn, *id, address)?;
            }
            Ok(Done::Nothing)
        }
        #[cfg(test)]
        Op::Execute(sql) => {
            conn.exec(sql, args![])?;
            Ok(Done::Nothing)
        }
    }
}
