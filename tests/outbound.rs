//! Notifications end to end: CLI → store → outbox worker inside `sealpost serve` → spool files
//! or a real SMTP server (aiosmtpd), parsed back with a real MIME parser.

mod common;

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
        .map(|r| r["id"].as_str().unwrap().to_owned())
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
        .map(|r| spool_file(&sb, r["id"].as_str().unwrap()))
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
        let seen = visible_text(&spool_file(&sb, row["id"].as_str().unwrap()));
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
                row["id"]
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
    let daemon = Daemon::start(&sb, &[]);
    wait_outbox(&sb, LIMIT, all_sent(1));
    daemon.stop();
    let got = peer.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["tls"], true);
    assert_eq!(got[0]["auth"], "sealpost");
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
    // With a 1 s retry base, a retry would have happened by now.
    std::thread::sleep(Duration::from_secs(3));
    let again = sb.run(&["outbox", "list"]).ok().json();
    assert_eq!(again["attempts"], 1);
    assert_eq!(again["status"], "failed");
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
