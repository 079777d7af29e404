//! Sealpost's integration tests, in one test binary.
//!
//! Each module drives the built `sealpost` binary (or the library in-process) against real
//! servers and clients. They are one binary rather than one per file because every test binary
//! links the whole crate again: one link instead of nineteen takes minutes off a clean build.
//! Run one file's tests with its module name as the filter, e.g.
//! `cargo test --test suite reply_corpus:: -- --nocapture`.
//!
//! `tests/linear.rs` stays a binary of its own: it installs a counting global allocator that
//! must see only its own test's allocations.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod api_contract;
mod auth;
mod backup;
mod browser;
mod cli;
mod crash;
mod daemon;
mod example_config;
mod hostile;
mod imap;
mod inbound;
mod outbound;
mod reply_corpus;
mod reply_fixtures;
mod serve;
mod systemd;
mod time_limits;
mod web;
mod webhooks;
