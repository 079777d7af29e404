//! Notifications end to end: CLI → store → outbox worker inside `sealpost serve` → spool files
//! or a real SMTP server (aiosmtpd), parsed back with a real MIME parser.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Daemon, Sandbox, SmtpPeer, random_text, visible_text, wait_outbox};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

fn all_sent(n: usize) -> impl Fn(&[Value]) -> bool {
    move |rows| rows.len() == n && rows.iter().all(|r| r["status"] == "sent")
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(raw).unwrap()
}

/// The Message-IDs a notification's References header lists, in order.
fn references(msg: &mail_parser::Message<'_>) -> Vec<String> {
    let list = msg
        .references()
        .as_text_list()
        .expect("a References header");
    list.iter().map(|s| s.to_string()).collect()
}

fn spool_file(sb: &Sandbox, id: &str) -> Vec<u8> {
    std::fs::read(sb.data_dir().join("spool").join(format!("{id}.eml"))).unwrap()
}

#[test]
fn threading_headers_across_three_posts() {
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread(
        "convenience",
        "Ergebnisse der Blutuntersuchung ✓",
        "First message.",
    );
    for body in ["Second message.", "Third message."] {
        sb.post(&thread, "lee@clinic.example.test", body).ok();
    }
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, all_sent(3));
    daemon.stop();

    // outbox list is newest first; walk the notifications in the order they were queued
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r["notification_id"].as_str().unwrap().to_owned())
        .collect();
    ids.reverse();
    let files: Vec<Vec<u8>> = ids.iter().map(|id| spool_file(&sb, id)).collect();
    let msgs: Vec<_> = files.iter().map(|f| parse(f)).collect();
    let mid = |i: usize| msgs[i].message_id().unwrap().to_owned();

    for (raw, m) in files.iter().zip(&msgs) {
        assert!(
            !raw.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "CRLF only"
        );
        assert!(
            raw.is_ascii(),
            "non-ASCII is encoded (RFC 2047 headers, QP/base64 bodies)"
        );
        assert_eq!(m.subject(), Some("Ergebnisse der Blutuntersuchung ✓"));
        assert_eq!(
            m.header_raw("Auto-Submitted").map(str::trim),
            Some("auto-generated")
        );
        assert!(m.header_raw("X-Sealpost-Loop").is_some());
        assert!(m.date().is_some());
        let reply_to = common::reply_address(m);
        assert!(reply_to.starts_with("reply+") && reply_to.ends_with("@reply.example.test"));
        let v = sb.run(&["token", "inspect", &reply_to]).ok().json();
        assert_eq!(v["valid"], true);
        assert_eq!(v["thread_id"], thread.as_str());
        let token = reply_to
            .trim_start_matches("reply+")
            .split('@')
            .next()
            .unwrap();
        let message_id = m.message_id().unwrap();
        assert!(
            !message_id
                .to_ascii_lowercase()
                .contains(&token.to_ascii_lowercase()),
            "the Message-ID carries no token: {message_id}"
        );
        assert_eq!(
            String::from_utf8_lossy(raw).matches(token).count(),
            1,
            "the token appears only in Reply-To"
        );
    }
    assert_ne!(mid(0), mid(1));
    assert!(msgs[0].header_raw("In-Reply-To").is_none());
    assert_eq!(msgs[1].in_reply_to().as_text(), Some(mid(0).as_str()));
    assert_eq!(msgs[2].in_reply_to().as_text(), Some(mid(1).as_str()));
    let refs = references(&msgs[2]);
    assert_eq!(refs, vec![mid(0), mid(1)]);

    // the third notification quotes the earlier conversation, newest first
    let text = msgs[2].body_text(0).unwrap().replace("\r\n", "\n");
    let second = text
        .find("> Second message.")
        .expect("quotes the second message");
    let first = text
        .find("> First message.")
        .expect("quotes the first message");
    assert!(text.contains("wrote:\n\nThird message."), "{text}");
    assert!(second < first);
}

/// Fourteen posts delivered in one batch: the last notification's References is the first
/// Message-ID and the nine latest (bounded however long the thread grows), In-Reply-To the one
/// just before, and it quotes the ten messages before its own, newest first.
#[test]
fn long_threads_keep_references_and_history_bounded() {
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("convenience", "Long thread", "Message 0.");
    for i in 1..14 {
        sb.post(&thread, "lee@clinic.example.test", &format!("Message {i}."))
            .ok();
    }
    let daemon = Daemon::start(&sb, &[]);
    let mut rows = wait_outbox(&sb, LIMIT, all_sent(14));
    daemon.stop();
    rows.reverse();
    let files: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| spool_file(&sb, r["notification_id"].as_str().unwrap()))
        .collect();
    let msgs: Vec<_> = files.iter().map(|f| parse(f)).collect();
    let mid = |i: usize| msgs[i].message_id().unwrap().to_owned();
    let refs = references(&msgs[13]);
    let expected: Vec<String> = [0].into_iter().chain(4..13).map(mid).collect();
    assert_eq!(refs, expected);
    assert_eq!(msgs[13].in_reply_to().as_text(), Some(mid(12).as_str()));
    let text = msgs[13].body_text(0).unwrap().replace("\r\n", "\n");
    let quoted: Vec<usize> = (0..13)
        .filter(|i| text.contains(&format!("> Message {i}.")))
        .collect();
    assert_eq!(quoted, (3..13).collect::<Vec<_>>(), "{text}");
    let newest = text.find("> Message 12.").unwrap();
    assert!(newest < text.find("> Message 3.").unwrap());
}

#[test]
fn secure_mode_notifications_carry_no_content() {
    let sb = Sandbox::with_keyring("");
    let mut secrets: Vec<String> = Vec::new();
    let mut secure_threads = Vec::new();
    for _ in 0..6 {
        let subject = random_text(3);
        let body = random_text(12);
        let thread = sb.new_thread("secure", &subject, &body);
        let reply = random_text(8);
        sb.post(&thread, "jane@example.test", &reply).ok();
        let staff = random_text(8);
        sb.post(&thread, "lee@clinic.example.test", &staff).ok();
        secrets.extend([subject, body, reply, staff]);
        secure_threads.push(thread);
    }
    // Control: a convenience thread, whose notification must show its content, proves the scan
    // can see decoded text.
    let control_body = random_text(6);
    let control = sb.new_thread("convenience", &random_text(2), &control_body);

    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, all_sent(6 * 3 + 1));
    daemon.stop();

    let fragments: Vec<&str> = secrets
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|w| w.chars().count() >= 5)
        .collect();
    assert!(fragments.len() > 100);
    let mut scanned = 0;
    for row in &rows {
        let seen = visible_text(&spool_file(&sb, row["notification_id"].as_str().unwrap()));
        if row["thread_id"] == control.as_str() {
            let word = control_body.split(' ').next().unwrap();
            assert!(
                seen.contains(word),
                "control: the scan sees decoded content"
            );
            continue;
        }
        assert!(
            secure_threads
                .iter()
                .any(|t| row["thread_id"] == t.as_str())
        );
        assert_eq!(row["mode"], "secure");
        for f in &fragments {
            assert!(
                !seen.contains(f),
                "secure notification {} contains '{f}'",
                row["notification_id"]
            );
        }
        assert!(seen.contains("https://portal.example.test/m/"));
        scanned += 1;
    }
    assert_eq!(scanned, 18);
}

fn smtp_config(peer: &SmtpPeer, tls: &str, extra: &str) -> String {
    format!(
        "[outbound]\ntransport = \"smtp\"\nsmtp_host = \"localhost\"\nsmtp_port = {}\nsmtp_tls = \"{tls}\"\nretry_base_secs = 1\nfrom = \"Lee Family Practice <noreply@example.test>\"\n{extra}",
        peer.port
    )
}

#[test]
fn relay_over_plain_smtp_reuses_the_connection() {
    let peer_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(peer_dir.path(), &[]);
    let sb = Sandbox::with_keyring(&smtp_config(&peer, "none", ""));
    for i in 0..5 {
        sb.new_thread("convenience", &format!("Subject {i}"), "Body");
    }
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, all_sent(5));
    daemon.stop();
    let got = peer.received();
    assert_eq!(got.len(), 5);
    for r in &got {
        assert_eq!(r["rcpt_tos"], serde_json::json!(["jane@example.test"]));
        assert!(r["mail_from"].as_str().unwrap().starts_with("bounce+"));
        assert_eq!(r["tls"], false);
    }
    for row in &rows {
        assert_eq!(row["attempts"], 1);
        assert!(
            row["relay_reply"]
                .as_str()
                .unwrap()
                .contains("queued as peer"),
            "{row}"
        );
    }
    let connections: std::collections::HashSet<_> =
        got.iter().map(|r| r["connection"].clone()).collect();
    assert!(
        connections.len() < 5,
        "a burst shares connections: {connections:?}"
    );
}

#[test]
fn relay_with_starttls_and_auth() {
    let peer_dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_cert(peer_dir.path());
    let peer = SmtpPeer::start(
        &peer_dir.path().join("mail"),
        &[
            "--tls",
            cert.to_str().unwrap(),
            key.to_str().unwrap(),
            "--auth",
            "sealpost:s3cret pass",
        ],
    );
    let pw_dir = tempfile::tempdir().unwrap();
    let pw = pw_dir.path().join("relay-password");
    std::fs::write(&pw, "s3cret pass\n").unwrap();
    let extra = format!(
        "smtp_username = \"sealpost\"\nsmtp_password_file = \"{}\"\nsmtp_ca_file = \"{}\"\n",
        pw.display(),
        cert.display()
    );
    let sb = Sandbox::with_keyring(&smtp_config(&peer, "starttls", &extra));
    sb.new_thread("secure", "S", "B");
    sb.new_thread("convenience", "S", "Content goes over TLS.");
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, all_sent(2));
    daemon.stop();
    let got = peer.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r["tls"], true);
        assert_eq!(r["auth"], "sealpost");
    }
    // Each delivery records how its connection was protected.
    for row in &rows {
        let tls = row["tls"].as_str().unwrap();
        assert!(
            tls.starts_with("TLSv1.3 TLS13_") || tls.starts_with("TLSv1.2 TLS_"),
            "{row}"
        );
    }
    assert!(rows.iter().any(|r| r["mode"] == "convenience"));
}

/// A relay that offers no STARTTLS never receives content: the secure notification goes out
/// (in clear text, as it carries none), the convenience one is deferred and, once
/// `outbound.tls_fallback_after` has passed, sent as a secure notification instead.
#[test]
fn content_is_never_sent_without_tls() {
    let peer_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(peer_dir.path(), &[]);
    let sb = Sandbox::with_keyring(&smtp_config(
        &peer,
        "starttls",
        "tls_fallback_after = \"4s\"\n",
    ));
    sb.new_thread("secure", "Results", "Nothing of this goes out.");
    let secret = "Your biopsy came back clear";
    sb.new_thread("convenience", "Results", secret);
    let daemon = Daemon::start(&sb, &[]);
    let deferred = wait_outbox(&sb, LIMIT, |rows| {
        rows.iter()
            .any(|r| r["mode"] == "convenience" && r["status"] == "deferred")
            && rows.iter().any(|r| r["status"] == "sent")
    });
    let waiting = deferred.iter().find(|r| r["status"] == "deferred").unwrap();
    let err = waiting["last_error"].as_str().unwrap();
    assert!(err.contains("no TLS to the relay"), "{err}");
    let sent = deferred.iter().find(|r| r["status"] == "sent").unwrap();
    assert_eq!(
        sent["tls"], "none",
        "content-free, so clear text is acceptable"
    );

    let rows = wait_outbox(&sb, LIMIT, all_sent(2));
    daemon.stop();
    for row in &rows {
        assert_eq!(row["mode"], "secure", "{row}");
        assert_eq!(row["tls"], "none");
    }
    let got = peer.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r["tls"], false);
        let raw = peer.message(r["file"].as_str().unwrap());
        let text = visible_text(&raw);
        assert!(
            !text.contains(secret),
            "content went out in clear text: {text}"
        );
        assert!(!String::from_utf8_lossy(&raw).contains("biopsy"));
    }
}

#[test]
fn relay_certificate_is_verified() {
    let peer_dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_cert(peer_dir.path());
    let peer = SmtpPeer::start(
        &peer_dir.path().join("mail"),
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    // No smtp_ca_file: the self-signed certificate is not trusted.
    let sb = Sandbox::with_keyring(&smtp_config(&peer, "starttls", ""));
    sb.new_thread("secure", "S", "B");
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, |rows| {
        rows.len() == 1 && rows[0]["status"] == "deferred"
    });
    daemon.stop();
    let err = rows[0]["last_error"].as_str().unwrap().to_lowercase();
    assert!(err.contains("certificate"), "{err}");
    assert!(peer.received().is_empty());
}

#[test]
fn temporary_failure_is_retried() {
    let peer_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(peer_dir.path(), &["--tempfail-first", "1"]);
    let sb = Sandbox::with_keyring(&smtp_config(&peer, "none", ""));
    sb.new_thread("secure", "S", "B");
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, all_sent(1));
    daemon.stop();
    assert_eq!(rows[0]["attempts"], 2, "{:?}", rows[0]);
    assert_eq!(peer.received().len(), 1);
}

#[test]
fn permanent_failure_is_not_retried() {
    let peer_dir = tempfile::tempdir().unwrap();
    let peer = SmtpPeer::start(peer_dir.path(), &["--reject", "jane@"]);
    let sb = Sandbox::with_keyring(&smtp_config(&peer, "none", ""));
    sb.new_thread("secure", "S", "B");
    let daemon = Daemon::start(&sb, &[]);
    let rows = wait_outbox(&sb, LIMIT, |rows| {
        rows.len() == 1 && rows[0]["status"] == "failed"
    });
    assert_eq!(rows[0]["attempts"], 1);
    assert!(
        rows[0]["last_error"].as_str().unwrap().starts_with("550"),
        "{:?}",
        rows[0]
    );
    // Failed is final: the job queue claims only queued and deferred rows, so there is no
    // retry to wait for (the store's queue tests pin that rule).
    assert_eq!(rows[0]["status"], "failed");
    let log = daemon.stop().stderr;
    assert!(peer.received().is_empty());
    // The relay's reply names the recipient; the log keeps only the domain.
    assert!(log.contains("<***@example.test>"), "{log}");
    assert!(!log.contains("jane@example.test"), "{log}");
}

#[test]
fn queued_notifications_survive_a_crash_and_restart() {
    let peer_dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    // First run: the relay is down, so everything is deferred; then the daemon is killed.
    let config = format!(
        "[outbound]\ntransport = \"smtp\"\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_tls = \"none\"\nretry_base_secs = 1\n"
    );
    let sb = Sandbox::with_keyring(&config);
    for i in 0..4 {
        sb.new_thread("convenience", &format!("S{i}"), "B");
    }
    let daemon = Daemon::start(&sb, &[]);
    wait_outbox(&sb, LIMIT, |rows| {
        rows.len() == 4 && rows.iter().all(|r| r["status"] == "deferred")
    });
    daemon.kill();

    // Second run: the relay is up on the same port.
    let peer = {
        let mut peer = None;
        for _ in 0..50 {
            let p = std::panic::catch_unwind(|| SmtpPeer::start_on(peer_dir.path(), port, &[]));
            if let Ok(p) = p {
                peer = Some(p);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peer.expect("the SMTP peer starts on the freed port")
    };
    let daemon = Daemon::start(&sb, &[]);
    wait_outbox(&sb, LIMIT, all_sent(4));
    daemon.stop();
    let got = peer.received();
    assert_eq!(got.len(), 4, "each notification delivered exactly once");
    let mut ids: HashMap<String, usize> = HashMap::new();
    for r in &got {
        let raw = peer.message(r["file"].as_str().unwrap());
        *ids.entry(parse(&raw).message_id().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(ids.len(), 4);
}

/// Checks a notification's DKIM signature twice: with mail-auth over DNS (the test's server
/// publishing `record`), and with dkimpy, a second implementation.
fn dkim_verdicts(
    message: &[u8],
    name: &str,
    record: &str,
    dns: &common::dns::TestDns,
) -> (bool, bool) {
    use mail_auth::hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
    use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator};
    let mut ns = NameServerConfig::udp_and_tcp(dns.addr.ip());
    for c in &mut ns.connections {
        c.port = dns.addr.port();
    }
    let resolver = MessageAuthenticator::new(
        ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
        ResolverOpts::default(),
    )
    .unwrap();
    let parsed = AuthenticatedMessage::parse(message).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outputs = runtime.block_on(resolver.verify_dkim(&parsed));
    let mail_auth = !outputs.is_empty() && outputs.iter().all(|o| *o.result() == DkimResult::Pass);

    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/dkim_verify.py");
    let mut child = std::process::Command::new("python3")
        .args([script, "--record", record, "--name", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with dkimpy is required (scripts/test.sh installs it)");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "dkim_verify.py failed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (mail_auth, v["ok"] == true)
}

/// Every notification is DKIM-signed with the key `sealpost dkim-keygen` made, for the
/// domain of `outbound.from`; the record it prints verifies the signature in two
/// implementations, spooled and relayed alike, and any change to the message breaks it.
#[test]
fn notifications_are_dkim_signed_with_the_generated_key() {
    for algorithm in ["rsa", "ed25519"] {
        let dns = common::dns::TestDns::start();
        let peer_dir = tempfile::tempdir().unwrap();
        let peer = SmtpPeer::start(peer_dir.path(), &[]);
        let keys = tempfile::tempdir().unwrap();
        let key = keys.path().join("dkim.pem");
        let base = "[outbound]\nfrom = \"Lee Family Practice <noreply@practice.test>\"\n";
        let made = Sandbox::new(base)
            .run(&[
                "dkim-keygen",
                "--out",
                key.to_str().unwrap(),
                "--algorithm",
                algorithm,
                "--selector",
                "s1",
            ])
            .ok()
            .json();
        assert_eq!(made["record_name"], "s1._domainkey.practice.test");
        let record = made["record"].as_str().unwrap().to_owned();
        let zone = made["zone_line"].as_str().unwrap();
        assert!(
            zone.starts_with("s1._domainkey.practice.test. 3600 IN TXT ( \""),
            "{zone}"
        );
        dns.txt("s1._domainkey.practice.test", &record);
        let mode = std::fs::metadata(&key).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        // An existing key is never replaced.
        let again = Sandbox::new(base).run(&["dkim-keygen", "--out", key.to_str().unwrap()]);
        assert_ne!(again.status, 0);

        let dkim = format!("dkim_selector = \"s1\"\ndkim_key = \"{}\"\n", key.display());
        for relayed in [false, true] {
            let config = if relayed {
                smtp_config(&peer, "none", &dkim)
                    .replace("noreply@example.test", "noreply@practice.test")
            } else {
                format!("{base}{dkim}")
            };
            let sb = Sandbox::with_keyring(&config);
            sb.new_thread("convenience", "Your results", "All is well, see you soon.");
            sb.new_thread("secure", "Your results", "Nothing of this goes out.");
            let daemon = Daemon::start(&sb, &[]);
            let rows = wait_outbox(&sb, LIMIT, all_sent(2));
            daemon.stop();
            let messages: Vec<Vec<u8>> = if relayed {
                let got = peer.received();
                got[got.len() - 2..]
                    .iter()
                    .map(|r| peer.message(r["file"].as_str().unwrap()))
                    .collect()
            } else {
                rows.iter()
                    .map(|r| spool_file(&sb, r["notification_id"].as_str().unwrap()))
                    .collect()
            };
            for m in &messages {
                let text = String::from_utf8_lossy(m);
                assert!(text.starts_with("DKIM-Signature:"), "{text}");
                assert!(text.contains("d=practice.test") && text.contains("s=s1"));
                let (mail_auth, dkimpy) =
                    dkim_verdicts(m, "s1._domainkey.practice.test", &record, &dns);
                assert!(
                    mail_auth && dkimpy,
                    "{algorithm} relayed={relayed}: {mail_auth} {dkimpy}"
                );
                // One changed byte in the body, or an added From:, and neither accepts it.
                let body_at = text.find("\r\n\r\n").unwrap() + 10;
                let mut tampered = m.clone();
                tampered[body_at] ^= 0x01;
                let (mail_auth, dkimpy) =
                    dkim_verdicts(&tampered, "s1._domainkey.practice.test", &record, &dns);
                assert!(
                    !mail_auth && !dkimpy,
                    "{algorithm}: a changed body still verifies"
                );
                let mut extra_from = b"From: someone@attacker.test\r\n".to_vec();
                let head_end = text.find("\r\n\r\n").unwrap();
                extra_from.splice(0..0, m[..head_end + 2].iter().copied());
                extra_from.extend_from_slice(&m[head_end + 2..]);
                let (mail_auth, dkimpy) =
                    dkim_verdicts(&extra_from, "s1._domainkey.practice.test", &record, &dns);
                assert!(
                    !mail_auth && !dkimpy,
                    "{algorithm}: an added From: still verifies"
                );
            }
        }
    }
}

/// A DKIM key that cannot be used stops the daemon at start, naming the key (exit 64).
#[test]
fn an_unusable_dkim_key_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("dkim.pem");
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let sb = Sandbox::with_keyring(&format!(
        "[outbound]\ndkim_selector = \"s1\"\ndkim_key = \"{}\"\n",
        key.display()
    ));
    let out = sb.run(&["serve"]);
    assert_eq!(out.status, 64, "{}", out.stderr);
    assert!(out.stderr.contains("outbound.dkim_key"), "{}", out.stderr);
    // A selector without a key is caught when the configuration is read.
    let sb = Sandbox::new("[outbound]\ndkim_selector = \"s1\"\n");
    let out = sb.run(&["check-config"]);
    assert_ne!(out.status, 0);
    assert!(out.stderr.contains("outbound.dkim_key"), "{}", out.stderr);
}
