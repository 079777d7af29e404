//! Inbound throughput of the SMTP door, next to Postfix's smtp-sink in the same run:
//!
//! 1. valid replies: `smtp-source -s 10 -l 1024 -f <participant> -t <reply address>`, one
//!    connection per message, into `sealpost serve` (each reply parsed, verified, trimmed,
//!    sealed, durably filed with a staff notification queued, before its 250) and into
//!    smtp-sink (which accepts and discards); Sealpost delivers the staff notifications during
//!    the run to a relay, a second smtp-sink, as it would in production;
//!    then the same into a second daemon whose sender authentication is on
//!    (`auth.policy = "require-dmarc-pass"`): SPF for the connecting IP and MAIL FROM, and DMARC,
//!    looked up in a DNS server on 127.0.0.1 (the tests' own), through the daemon's resolver and
//!    its cache; the smtp-source messages carry no DKIM signature, so DKIM costs only the
//!    search for one;
//! 2. forged tokens refused at RCPT: ten concurrent clients, one connection each try
//!    (greeting, EHLO, MAIL, RCPT with a forged reply address, QUIT), against both.
//!
//! Run: `cargo bench --bench inbound [-- N]` (N messages per measurement, default 2000).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::harness::dns::TestDns;
use common::harness::{Daemon, Sandbox};
use common::{Sink, count_arg, free_port, timed, tool};
use sealpost::crypto::{Keyring, ReplyToken};
use sealpost::domain::{Address, Mode, Role, ThreadId, Via};
use sealpost::store::{NewParticipant, NewThread, Store};

const SESSIONS: usize = 10;

/// `n` tries, `SESSIONS` at a time: connect, EHLO, MAIL, RCPT `rcpt`, QUIT. Returns the time
/// and the RCPT reply codes seen.
fn rcpt_storm(port: u16, n: usize, rcpt: &str) -> (Duration, Vec<u16>) {
    let start = Instant::now();
    let handles: Vec<_> = (0..SESSIONS)
        .map(|s| {
            let rcpt = rcpt.to_owned();
            let count = n / SESSIONS + usize::from(s < n % SESSIONS);
            std::thread::spawn(move || {
                let mut codes = Vec::with_capacity(count);
                for _ in 0..count {
                    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
                    stream.set_nodelay(true).unwrap();
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut w = stream;
                    let mut read_reply = || -> u16 {
                        let mut line = String::new();
                        loop {
                            line.clear();
                            reader.read_line(&mut line).unwrap();
                            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                                return line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                            }
                        }
                    };
                    read_reply();
                    w.write_all(b"EHLO bench.example.test\r\n").unwrap();
                    read_reply();
                    w.write_all(b"MAIL FROM:<jane@example.test>\r\n").unwrap();
                    read_reply();
                    w.write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
                        .unwrap();
                    codes.push(read_reply());
                    w.write_all(b"QUIT\r\n").unwrap();
                    read_reply();
                }
                codes
            })
        })
        .collect();
    let codes = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    (start.elapsed(), codes)
}

/// One daemon with a convenience thread to Jane, and the reply address of her token.
struct Door {
    sb: Sandbox,
    store: Store,
    thread: ThreadId,
    reply_to: String,
    daemon: Daemon,
}

impl Door {
    fn start(runtime: &tokio::runtime::Runtime, relay_port: u16, extra: &str) -> Door {
        let sb = Sandbox::with_keyring(&format!(
            "[outbound]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {relay_port}\nsmtp_tls = \"none\"\nfrom = \"Lee Family Practice <noreply@example.test>\"\n{extra}"
        ));
        let ring = Arc::new(Keyring::load(&sb.keyring_path()).unwrap());
        let url = format!("sqlite://{}", sb.data_dir().join("sealpost.db").display());
        let store = runtime
            .block_on(Store::open(
                &url,
                ring.clone(),
                sealpost::clock::Clock::system(),
            ))
            .unwrap();
        sb.consent("jane@example.test");
        let posted = runtime
            .block_on(store.create_thread(NewThread {
                subject: "Lab results".into(),
                mode: Mode::Convenience,
                author: NewParticipant {
                    address: Address::parse("lee@clinic.example.test").unwrap(),
                    display_name: None,
                    role: Role::Staff,
                },
                others: vec![NewParticipant {
                    address: Address::parse("jane@example.test").unwrap(),
                    display_name: None,
                    role: Role::Recipient,
                }],
                body: "Your results are in.".into(),
                via: Via::Cli,
                shared: false,
            }))
            .unwrap();
        let view = runtime.block_on(store.thread(posted.thread_id)).unwrap();
        let jane = view
            .participants
            .iter()
            .find(|p| p.address.as_str() == "jane@example.test")
            .unwrap();
        let reply_to = ReplyToken::issue(
            &ring,
            posted.thread_id,
            jane.id,
            sealpost::clock::Clock::system().now(),
        )
        .address("reply.example.test");
        let daemon = Daemon::start(&sb, &[("RUST_LOG", "warn")]);
        Door {
            sb,
            store,
            thread: posted.thread_id,
            reply_to,
            daemon,
        }
    }

    /// Replies filed in the thread (its first message is the staff's).
    fn filed(&self, runtime: &tokio::runtime::Runtime) -> usize {
        runtime
            .block_on(self.store.thread(self.thread))
            .unwrap()
            .messages
            .len()
            - 1
    }
}

fn main() {
    let n = count_arg(2000);
    let source = tool("smtp-source", "postfix");
    // Staff notifications go to a relay, as in production: a second smtp-sink.
    let relay_port = free_port();
    let _relay = Sink::start(relay_port);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let plain = Door::start(&runtime, relay_port, "");
    let port = plain.sb.smtp_port;
    // Jane's domain publishes SPF for the connecting address and a DMARC policy of reject.
    let dns = TestDns::start();
    dns.txt("example.test", "v=spf1 ip4:127.0.0.1 -all")
        .txt("_dmarc.example.test", "v=DMARC1; p=reject");
    let checked = Door::start(
        &runtime,
        relay_port,
        &format!(
            "[auth]\npolicy = \"require-dmarc-pass\"\ndns_servers = [\"{}\"]\ndns_timeout_secs = 2\n",
            dns.addr
        ),
    );

    let sink_port = free_port();
    let _sink = Sink::start(sink_port);
    let source_run = |target: u16, reply_to: &str| {
        timed(Command::new(&source).args([
            "-s",
            &SESSIONS.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            "1024",
            "-f",
            "jane@example.test",
            "-t",
            reply_to,
            &format!("127.0.0.1:{target}"),
        ]))
    };
    let sink_valid = source_run(sink_port, &plain.reply_to);
    let sealpost_valid = source_run(port, &plain.reply_to);
    let filed = plain.filed(&runtime);
    let queries_before = dns.queries.load(std::sync::atomic::Ordering::Relaxed);
    let checked_valid = source_run(checked.sb.smtp_port, &checked.reply_to);
    let checked_filed = checked.filed(&runtime);
    let queries = dns.queries.load(std::sync::atomic::Ordering::Relaxed) - queries_before;
    checked.daemon.stop();

    let forged = "reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@reply.example.test";
    let (sink_rcpt, _) = rcpt_storm(sink_port, n, forged);
    let (sealpost_rcpt, codes) = rcpt_storm(port, n, forged);
    let refused = codes.iter().filter(|c| **c == 550).count();

    plain.daemon.stop();

    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("inbound: {n} messages, {SESSIONS} concurrent sessions, one connection per message");
    println!("  valid replies, 1 KiB (smtp-source -s {SESSIONS} -l 1024)");
    println!(
        "    smtp-sink            {:>8.0} msg/s  ({:.2} s)",
        rate(sink_valid),
        sink_valid.as_secs_f64()
    );
    println!(
        "    sealpost (filed)     {:>8.0} msg/s  ({:.2} s; {filed} filed)",
        rate(sealpost_valid),
        sealpost_valid.as_secs_f64()
    );
    println!(
        "    ratio                {:>8.2}",
        rate(sealpost_valid) / rate(sink_valid)
    );
    println!(
        "    sealpost, SPF+DMARC  {:>8.0} msg/s  ({:.2} s; {checked_filed} filed; {queries} DNS queries)",
        rate(checked_valid),
        checked_valid.as_secs_f64()
    );
    println!(
        "    ratio to smtp-sink   {:>8.2}   to sealpost without  {:.2}",
        rate(checked_valid) / rate(sink_valid),
        rate(checked_valid) / rate(sealpost_valid)
    );
    println!("  forged reply tokens, refused at RCPT");
    println!(
        "    smtp-sink (accepts)  {:>8.0} tries/s ({:.2} s)",
        rate(sink_rcpt),
        sink_rcpt.as_secs_f64()
    );
    println!(
        "    sealpost (550)       {:>8.0} tries/s ({:.2} s; {refused} refused)",
        rate(sealpost_rcpt),
        sealpost_rcpt.as_secs_f64()
    );
    println!(
        "    ratio                {:>8.2}",
        rate(sealpost_rcpt) / rate(sink_rcpt)
    );
    assert_eq!(filed, n, "every reply was filed");
    assert_eq!(checked_filed, n, "every authenticated reply was filed");
    assert_eq!(refused, n, "every forged token was refused");
}
