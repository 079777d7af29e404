//! IMAP door throughput, next to Dovecot's own APPEND rate in the same run:
//!
//! 1. Dovecot: APPEND N replies to the gateway's mailbox (the baseline: how fast mail can get
//!    into the mailbox at all);
//! 2. backlog drain: `sealpost serve` starts with those N waiting and files them all (each
//!    fetched, verified, trimmed, sealed, committed, then moved);
//! 3. latency with IDLE: one reply APPENDed at a time while the poller idles; time until it
//!    is in the processed folder (which happens only after its filing is committed).
//!
//! Run: `cargo bench --bench imap [-- N]` (default 5000).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Dovecot, Sandbox, client_reply, notification_to, wait_for};

fn main() {
    let n = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000usize);
    let dovecot = Dovecot::start();
    let pw = dovecot.dir.path().join("pw");
    std::fs::write(&pw, "pw-sealpost\n").unwrap();
    let sb = Sandbox::with_keyring(&format!(
        "[imap]\nenabled = true\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\nusername = \"sealpost\"\npassword_file = \"{}\"\n",
        dovecot.imap_port,
        pw.display()
    ));
    sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[("RUST_LOG", "warn")]);
    let notification = notification_to(&sb, "jane@example.test");
    daemon.stop();

    let replies: Vec<Vec<u8>> = (0..n)
        .map(|k| {
            client_reply(
                &notification,
                "jane@example.test",
                &format!("Reply {k}"),
                &format!("b{k}@x.test"),
            )
            .1
        })
        .collect();
    let mut imap = dovecot.client("sealpost");
    let start = Instant::now();
    for r in &replies {
        imap.append("INBOX", r);
    }
    let append = start.elapsed();

    let start = Instant::now();
    let daemon = Daemon::start(&sb, &[("RUST_LOG", "warn")]);
    wait_for(Duration::from_secs(3600), || {
        (imap.count("INBOX") == 0).then_some(())
    })
    .expect("drained");
    let drain = start.elapsed();

    let rounds = 50;
    let mut latencies = Vec::with_capacity(rounds);
    for k in 0..rounds {
        let (_, raw) = client_reply(
            &notification,
            "jane@example.test",
            &format!("Live {k}"),
            &format!("l{k}@x.test"),
        );
        let before = imap.count("Sealpost.Processed");
        let t = Instant::now();
        imap.append("INBOX", &raw);
        wait_for(Duration::from_secs(60), || {
            (imap.count("Sealpost.Processed") > before).then_some(())
        })
        .expect("filed");
        latencies.push(t.elapsed());
    }
    daemon.stop();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("imap: {n} replies in the gateway's mailbox (Dovecot, Maildir, 127.0.0.1)");
    println!(
        "  dovecot APPEND (one connection)   {:>8.0} msg/s  ({:.2} s)",
        rate(append),
        append.as_secs_f64()
    );
    println!(
        "  sealpost backlog drain (filed)    {:>8.0} msg/s  ({:.2} s, includes start-up)",
        rate(drain),
        drain.as_secs_f64()
    );
    println!(
        "  ratio drain / append              {:>8.2}",
        rate(drain) / rate(append)
    );
    println!(
        "  APPEND -> filed and moved, IDLE ({rounds} rounds): p50 {:.0} ms, p95 {:.0} ms",
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.95).as_secs_f64() * 1000.0
    );
}
