//! Inbound email: one pipeline for every door (SMTP listener, IMAP poller).

pub mod reply_text;
