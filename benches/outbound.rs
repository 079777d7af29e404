//! Outbound throughput: notifications delivered per second by `sealpost serve` to Postfix's
//! smtp-sink over a reused connection, next to `smtp-source -d` (also one reused connection)
//! into the same kind of sink, measured in the same run.
//!
//! Run: `cargo bench --bench outbound [-- N]` (N notifications, default 2000).

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::harness::{Daemon, Sandbox};
use common::{Sink, count_arg, free_port, timed, tool};
use sealpost::crypto::Keyring;
use sealpost::domain::DeliveryStatus;
use sealpost::domain::consent::CONVENIENCE_WARNING;
use sealpost::domain::{Address, Mode, Role, Via};
use sealpost::store::{Consent, NewParticipant, NewThread, Store};

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
    let port = free_port();
    let _sink = Sink::start(port);
    let sb = Sandbox::with_keyring(&format!(
        "[outbound]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\n"
    ));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keyring = Keyring::load(&sb.keyring_path()).unwrap();
    let url = format!("sqlite://{}", sb.data_dir().join("sealpost.db").display());
    let store = runtime
        .block_on(Store::open(
            &url,
            Arc::new(keyring),
            sealpost::clock::Clock::system(),
        ))
        .unwrap();
    let per_thread = 50;
    let body = "Your appointment is confirmed for Tuesday at 10:00.\n".repeat(16);
    runtime.block_on(async {
        for t in 0..n.div_ceil(per_thread) {
            let recipients = per_thread.min(n - t * per_thread);
            for r in 0..recipients {
                store
                    .set_consent(Consent {
                        address: Address::parse(&format!("patient{t}-{r}@example.test")).unwrap(),
                        convenience: true,
                        text: CONVENIENCE_WARNING.into(),
                        by: "bench".into(),
                    })
                    .await
                    .unwrap();
            }
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
                    // Several recipients of one thread: the fan-out this bench measures.
                    shared: true,
                })
                .await
                .unwrap();
        }
    });

    let start = Instant::now();
    let daemon = Daemon::start(&sb, &[("RUST_LOG", "warn")]);
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
    daemon.stop();

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
