//! The HTTP API under load, next to the same server's trivial `/healthz` in the same run:
//! wrk (Debian's) with 50 connections on 2 threads, first GET /healthz (no key, no database),
//! then POST /v1/threads/{id}/messages with a write key: each request checks the key, seals
//! the message, commits it with a notification queued for the recipient, and answers 201 —
//! while the daemon's outbox worker delivers those notifications (to the spool) as it would in
//! production. Prints requests per second, the ratio, and p50/p99 latency of each.
//!
//! Run: `cargo bench --bench api [-- SECONDS]` (each measurement, default 10).

mod common;

use std::process::Command;

use common::harness::http::{Api, key};
use common::harness::{Daemon, Sandbox};
use common::{count_arg, free_port, tool};

const CONNECTIONS: &str = "50";
const THREADS: &str = "2";

/// What wrk measured.
struct Measured {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    errors: u64,
}

/// A wrk latency such as `1.23ms`, `850.00us` or `1.02s`, in milliseconds.
fn millis(text: &str) -> f64 {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn wrk(url: &str, seconds: usize, script: Option<&std::path::Path>) -> Measured {
    let mut c = Command::new(tool("wrk", "wrk"));
    c.args(["-t", THREADS, "-c", CONNECTIONS, "-d"])
        .arg(format!("{seconds}s"))
        .arg("--latency");
    if let Some(s) = script {
        c.arg("-s").arg(s);
    }
    let out = c.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    let field = |prefix: &str| -> Option<String> {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    };
    let per_sec = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in {text}"));
    let p50 = field("50%").map_or(f64::NAN, |v| millis(&v));
    let p99 = field("99%").map_or(f64::NAN, |v| millis(&v));
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors = field("Non-2xx or 3xx responses:")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        + field("Socket errors:").map_or(0, |_| 1);
    Measured {
        per_sec,
        p50_ms: p50,
        p99_ms: p99,
        requests,
        errors,
    }
}

fn main() {
    let seconds = count_arg(10);
    // No rate limit: the point is what the server can do.
    let port = free_port();
    let sb = Sandbox::with_keyring(&format!(
        "[api]\nlisten = \"127.0.0.1:{port}\"\nrequests_per_minute = 0\n"
    ));
    let (_, write) = key(&sb, "write");
    let daemon = Daemon::start(&sb, &[]);
    let api = Api { port };
    let r = api.call(
        "POST",
        "/v1/threads",
        Some(&write),
        Some(
            r#"{"subject":"Benchmark","from":{"address":"lee@clinic.example.test"},
                "to":[{"address":"jane@example.test"}],"body":"First."}"#,
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let thread = r.body["thread_id"].as_str().unwrap().to_owned();

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\n\
             wrk.headers[\"Authorization\"] = \"Bearer {write}\"\n\
             wrk.headers[\"Content-Type\"] = \"application/json\"\n\
             wrk.body = '{{\"from\":\"lee@clinic.example.test\",\"body\":\"Your results are in; nothing to worry about. See you on Tuesday.\"}}'\n"
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    // Warm-up: connections, caches, the first pages of the database.
    wrk(&format!("{base}/healthz"), 2, None);
    wrk(
        &format!("{base}/v1/threads/{thread}/messages"),
        2,
        Some(&script),
    );

    let health = wrk(&format!("{base}/healthz"), seconds, None);
    let post = wrk(
        &format!("{base}/v1/threads/{thread}/messages"),
        seconds,
        Some(&script),
    );
    let stopped = daemon.stop();
    assert_eq!(stopped.status, 0, "{}", stopped.stderr);

    println!(
        "api bench: wrk -t{THREADS} -c{CONNECTIONS} -d{seconds}s, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (name, m) in [
        ("GET /healthz", &health),
        ("POST /v1/threads/{id}/messages", &post),
    ] {
        println!(
            "  {name:32} {:>9.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  ({} requests, {} errors)",
            m.per_sec, m.p50_ms, m.p99_ms, m.requests, m.errors
        );
    }
    println!(
        "  ratio posts/healthz: {:.3}",
        post.per_sec / health.per_sec
    );
    assert_eq!(post.errors, 0, "posts were refused or failed");
}
