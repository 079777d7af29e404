//! Inbound email: one pipeline for every door (SMTP listener, IMAP poller).

pub mod auth;
pub mod classify;
pub mod heavy;
pub mod imap;
pub mod mime;
pub mod pipeline;
pub mod reply_text;
pub mod smtp;
