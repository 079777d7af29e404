//! Outbound throughput: notifications delivered per second by `sealpost serve` to Postfix's
//! smtp-sink over a reused connection, next to `smtp-source -d` (also one reused connection)
//! into the same kind of sink, measured in the same run.
//!
//! Run: `cargo bench --bench outbound [-- N]` (N notifications, default 2000).

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Sink, binary, count_arg, free_port, timed, tool};
use sealpost::crypto::Keyring;
use sealpost::domain::{Address, Mode, Role, Via};
use sealpost::store::{DeliveryStatus, NewParticipant, NewThread, Store};

fn main() {
    let n = count_arg(2000);
    let source = tool("smtp-source", "postfix");

    // Baseline: smtp-source -d (one connection, reused) -> smtp-sink, 1 KiB messages.
    let port = free_port();
    let sink = Sink::start(port);
    let baseline = timed(Command::new(&source).args([
        "-d",
        "-s",
        "1",
        "-m",
        &n.to_string(),
        "-l",
        "1024",
        "-f",
        "bench@example.test",
        "-t",
        "sink@example.test",
        &format!("127.0.0.1:{port}"),
    ]));
    drop(sink);

    // Sealpost: N queued notifications (half secure, half convenience) -> smtp-sink.
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _sink = Sink::start(port);
    let config = dir.path().join("sealpost.toml");
    std::fs::write(
        &config,
        format!(
            "[general]\ndata_dir = \"{}\"\n[smtp]\nreply_domain = \"reply.example.test\"\n\
             [outbound]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let ok = Command::new(binary())
        .args(["--config", config.to_str().unwrap(), "keygen"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keyring = Keyring::load(&dir.path().join("data/keyring.json")).unwrap();
    let url = format!("sqlite://{}", dir.path().join("data/sealpost.db").display());
    let store = runtime
        .block_on(Store::open(&url, Arc::new(keyring)))
        .unwrap();
    let per_thread = 50;
    let body = "Your appointment is confirmed for Tuesday at 10:00.\n".repeat(16);
    runtime.block_on(async {
        for t in 0..n.div_ceil(per_thread) {
            let recipients = per_thread.min(n - t * per_thread);
            store
                .create_thread(NewThread {
                    subject: format!("Appointment {t}"),
                    mode: if t % 2 == 0 {
                        Mode::Secure
                    } else {
                        Mode::Convenience
                    },
                    author: NewParticipant {
                        address: Address::parse("staff@clinic.example.test").unwrap(),
                        display_name: Some("Front desk".into()),
                        role: Role::Staff,
                    },
                    others: (0..recipients)
                        .map(|r| NewParticipant {
                            address: Address::parse(&format!("patient{t}-{r}@example.test"))
                                .unwrap(),
                            display_name: None,
                            role: Role::Recipient,
                        })
                        .collect(),
                    body: body.clone(),
                    via: Via::Cli,
                })
                .await
                .unwrap();
        }
    });

    let start = Instant::now();
    let mut daemon = Command::new(binary())
        .args(["--config", config.to_str().unwrap(), "serve"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let elapsed = runtime.block_on(async {
        loop {
            let sent = store
                .list_notifications(Some(DeliveryStatus::Sent), None)
                .await
                .unwrap()
                .len();
            if sent >= n {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "only {sent}/{n} sent after 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let _ = Command::new("kill").arg(daemon.id().to_string()).status();
    let _ = daemon.wait();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("outbound: {n} messages to smtp-sink over one reused connection");
    println!(
        "  smtp-source -d -> smtp-sink (1 KiB)        {:>9.0} msg/s  ({:.2} s)",
        rate(baseline),
        baseline.as_secs_f64()
    );
    println!(
        "  sealpost outbox -> smtp-sink (~1 KiB, 50% convenience) {:>9.0} msg/s  ({:.2} s, includes start-up)",
        rate(elapsed),
        elapsed.as_secs_f64()
    );
    println!(
        "  ratio sealpost / smtp-source: {:.2}",
        rate(elapsed) / rate(baseline)
    );
}
