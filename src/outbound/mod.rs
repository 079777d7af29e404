//! Outbound: notifications (composition, the outbox worker, the transports) and webhook
//! deliveries to the practice's systems.

pub mod compose;
pub mod dkim;
pub mod sms;
pub mod templates;
pub mod transport;
pub mod webhook;
pub mod worker;
