//! Outbound notifications: composition, the outbox worker, and the transports.

pub mod compose;
pub mod dkim;
pub mod templates;
pub mod transport;
pub mod worker;
