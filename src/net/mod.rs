//! What the daemon's doors share about connections: who may hold one ([`slots`]), how many
//! the process can afford ([`descriptors`]), and which peers are proxies speaking for others
//! ([`proxies`]). Plain rules and counters, used by the SMTP listener and the HTTP listeners
//! alike.

pub mod descriptors;
pub mod proxies;
pub mod slots;
