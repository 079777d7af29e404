//! Outbound: notifications (composition, the outbox worker, the transports) and webhook
//! deliveries to the practice's systems.

pub mod compose;
pub mod dkim;
#[cfg(feature = "daemon")]
pub mod sms;
pub mod templates;
pub mod transport;
#[cfg(feature = "daemon")]
pub mod webhook;
pub mod worker;
