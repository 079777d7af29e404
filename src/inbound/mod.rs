//! Inbound email: one pipeline for every door (SMTP listener, IMAP poller).

pub mod classify;
pub mod reply_text;
