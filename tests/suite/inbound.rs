//! Replies by email, end to end: a convenience notification from the spool, a reply written
//! the way mail clients write one, sent with real SMTP clients (python's smtplib, s-nail) to the
//! daemon's listener; then what was filed, what was refused, and what went out.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{
    Daemon, Sandbox, client_reply, messages, notification_to, smtp_send, wait_for, wait_outbox,
};
use sealpost::crypto::{Keyring, ReplyToken};
use sealpost::domain::{ParticipantId, ThreadId};

const JANE: &str = "jane@example.test";
const LEE: &str = "lee@clinic.example.test";

fn setup(extra: &str) -> (Sandbox, Daemon, String) {
    let sb = Sandbox::with_keyring(extra);
    let thread = sb.new_thread(
        "convenience",
        "Lab results",
        "Your results are in. All values are normal.",
    );
    let daemon = Daemon::start(&sb, &[]);
    (sb, daemon, thread)
}

fn code(v: &serde_json::Value) -> i64 {
    v[0].as_i64().unwrap()
}

#[test]
fn reply_is_trimmed_filed_and_announced() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);
    let typed = "Thank you, Dr Lee!\n\nI will come on Tuesday at 10.\nJane";
    let (reply_to, raw) = client_reply(
        &notification,
        "Jane Doe <jane@example.test>",
        typed,
        "r1@mail.example.test",
    );
    let out = smtp_send(sb.smtp_port, JANE, &[&reply_to], &raw, None);
    assert_eq!(code(&out["rcpt"][&reply_to]), 250, "{out}");
    assert_eq!(code(&out["data"]), 250, "{out}");

    let msgs = messages(&sb, &thread);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["body"], typed, "exactly the typed text");
    assert_eq!(msgs[1]["via"], "smtp");
    assert_eq!(msgs[1]["from"], JANE);
    // The reply's In-Reply-To names the notification: it answers that notification's message.
    assert_eq!(msgs[1]["answers"], msgs[0]["message_id"]);
    assert!(msgs[0]["answers"].is_null());

    // The staff participant is told, with the content (convenience mode).
    let staff = notification_to(&sb, LEE);
    let seen = common::visible_text(&staff);
    assert!(
        seen.contains("I will come on Tuesday at 10."),
        "staff notification carries the reply"
    );
    let log = daemon.stop().stderr;
    assert!(log.contains("inbound message filed"), "{log}");
    let token = reply_to
        .trim_start_matches("reply+")
        .split('@')
        .next()
        .unwrap();
    for secret in ["Tuesday at 10", "Your results are in", "Lab results", token] {
        assert!(
            !log.contains(secret),
            "the log must not contain '{secret}': {log}"
        );
    }
}

#[test]
fn reply_from_a_real_mail_client() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);
    let mbox = sb.dir.path().join("mbox");
    let mut content = b"From sealpost@localhost Sun Nov 22 03:00:00 2026\n".to_vec();
    content.extend(notification.iter().filter(|b| **b != b'\r'));
    content.push(b'\n');
    std::fs::write(&mbox, content).unwrap();
    common::snail_reply(
        mbox.to_str().unwrap(),
        &format!("smtp://127.0.0.1:{}", sb.smtp_port),
        &[],
        "Merci, à mardi !",
    );
    let msgs = wait_for(Duration::from_secs(30), || {
        let m = messages(&sb, &thread);
        (m.len() == 2).then_some(m)
    })
    .expect("the reply is filed");
    assert_eq!(msgs[1]["body"], "Merci, à mardi !");
    daemon.stop();
}

#[test]
fn bad_tokens_are_refused_at_rcpt() {
    let (sb, daemon, thread) = setup("[policy]\ntoken_ttl_days = 30\n");
    let notification = notification_to(&sb, JANE);
    let (reply_to, raw) = client_reply(&notification, JANE, "hello", "r2@mail.example.test");
    let token = reply_to
        .trim_start_matches("reply+")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let ring = Keyring::load(&sb.keyring_path()).unwrap();
    let claims = ReplyToken::verify(&token, &ring, sealpost::clock::Clock::system().now(), 30)
        .unwrap()
        .claims;
    let now = sealpost::clock::Clock::system().now();
    let addr = |t: &str| format!("reply+{t}@reply.example.test");
    let mut tampered = token.clone().into_bytes();
    tampered[20] = if tampered[20] == b'a' { b'b' } else { b'a' };
    let other_thread = ReplyToken::issue(
        &ring,
        ThreadId(claims.thread_id.0 ^ 1),
        claims.participant_id,
        now,
    );
    let other_participant = ReplyToken::issue(
        &ring,
        claims.thread_id,
        ParticipantId(claims.participant_id.0 ^ 1),
        now,
    );
    let expired = ReplyToken::issue(
        &ring,
        claims.thread_id,
        claims.participant_id,
        now - 31 * 86_400,
    );
    let bad = [
        addr("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
        addr(&token[..40]),
        addr(std::str::from_utf8(&tampered).unwrap()),
        addr(other_thread.as_str()),
        addr(other_participant.as_str()),
        "jane@reply.example.test".to_owned(),
        format!("reply+{token}@elsewhere.example.test"),
    ];
    for a in &bad {
        let out = smtp_send(sb.smtp_port, JANE, &[a], &raw, None);
        assert_eq!(code(&out["rcpt"][a]), 550, "{a}: {out}");
        assert!(out["data"].is_null(), "forged mail never reaches DATA");
    }
    assert_eq!(messages(&sb, &thread).len(), 1);

    // An expired one is genuine: it is accepted at RCPT (the reply may be the patient's),
    // and, from a sender who does not prove to be the participant, refused after DATA.
    let old = addr(expired.as_str());
    let out = smtp_send(sb.smtp_port, JANE, &[&old], &raw, None);
    assert_eq!(code(&out["rcpt"][&old]), 250, "{out}");
    assert_eq!(code(&out["data"]), 550, "{out}");
    assert_eq!(messages(&sb, &thread).len(), 1);

    // Upper case (some servers fold local parts) still works.
    let upper = reply_to.to_uppercase();
    let out = smtp_send(sb.smtp_port, JANE, &[&upper], &raw, None);
    assert_eq!(code(&out["rcpt"][&upper]), 250, "{out}");
    assert_eq!(code(&out["data"]), 250);
    assert_eq!(messages(&sb, &thread).len(), 2);
    daemon.stop();
}

#[test]
fn wrong_sender_auto_replies_and_duplicates_are_not_filed() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);

    // A forwarded notification answered by someone else.
    let (to, raw) = client_reply(
        &notification,
        "Mallory <mallory@example.test>",
        "let me in",
        "m1@x.test",
    );
    let out = smtp_send(sb.smtp_port, "mallory@example.test", &[&to], &raw, None);
    assert_eq!(
        code(&out["data"]),
        550,
        "refused after DATA, so Mallory's own server tells Mallory: {out}"
    );
    // The right From, a different envelope sender, and nothing proves who wrote it (this
    // sandbox checks no sender authentication): held, not filed, not dropped.
    let (_, raw) = client_reply(&notification, JANE, "envelope differs", "m2@x.test");
    let out = smtp_send(sb.smtp_port, "mallory@example.test", &[&to], &raw, None);
    assert_eq!(code(&out["data"]), 250, "{out}");
    let held = sb.run(&["held", "list"]).ok().json_lines();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["reason"], "auth-failed");

    // An out-of-office reply.
    let (_, raw) = client_reply(&notification, JANE, "I am away until Monday.", "ooo@x.test");
    let ooo = [b"Auto-Submitted: auto-replied\r\n".as_slice(), &raw].concat();
    assert_eq!(
        code(&smtp_send(sb.smtp_port, JANE, &[&to], &ooo, None)["data"]),
        250
    );
    let (_, raw) = client_reply(&notification, JANE, "Away.", "ooo2@x.test");
    let raw = String::from_utf8(raw)
        .unwrap()
        .replace("Subject: Re:", "Subject: Out of Office: Re:");
    smtp_send(sb.smtp_port, JANE, &[&to], raw.as_bytes(), None);

    // The same reply delivered twice.
    let (_, raw) = client_reply(&notification, JANE, "Once only.", "dup@x.test");
    for _ in 0..2 {
        assert_eq!(
            code(&smtp_send(sb.smtp_port, JANE, &[&to], &raw, None)["data"]),
            250
        );
    }
    let msgs = messages(&sb, &thread);
    let bodies: Vec<&str> = msgs.iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(
        bodies,
        vec!["Your results are in. All values are normal.", "Once only."]
    );
    daemon.stop();
}

#[test]
fn delivery_status_notification_updates_the_notification() {
    let (sb, daemon, _thread) = setup("");
    let notification = notification_to(&sb, JANE);
    let n = mail_parser::MessageParser::default()
        .parse(&notification)
        .unwrap();
    let original_id = n.message_id().unwrap().to_owned();
    let rows = sb.run(&["outbox", "list"]).ok().json_lines();
    let id = rows.iter().find(|r| r["recipient"] == JANE).unwrap()["notification_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ring = Keyring::load(&sb.keyring_path()).unwrap();
    let bounce = sealpost::crypto::token::bounce_address(
        &ring,
        i64::from_str_radix(&id, 16).unwrap(),
        "reply.example.test",
    );
    let dsn = format!(
        "From: MAILER-DAEMON@mx.example.test\r\nTo: {bounce}\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry.\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.test\r\n\r\nFinal-Recipient: rfc822; jane@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original_id}>\r\nSubject: Lab results\r\n--B--\r\n"
    );
    let out = smtp_send(sb.smtp_port, "<>", &[&bounce], dsn.as_bytes(), None);
    assert_eq!(code(&out["data"]), 250, "{out}");
    let rows = wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter()
            .any(|r| r["notification_id"] == id.as_str() && r["status"] == "bounced")
    });
    let row = rows
        .iter()
        .find(|r| r["notification_id"] == id.as_str())
        .unwrap();
    assert!(
        row["last_error"].as_str().unwrap().contains("5.1.1"),
        "{row}"
    );
    // The bounced notification carried content: Jane goes back to secure notifications, and
    // Dr Lee is told (content-free).
    let jane = sb.run(&["person", "show", JANE]).ok().json();
    assert_eq!(jane["convenience"], false, "{jane}");
    assert_eq!(jane["convenience_by"], "bounce", "{jane}");
    let rows = wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter().any(|r| {
            r["recipient"] == "lee@clinic.example.test" && r["kind"] == "notice-made-secure"
        })
    });
    let notice = rows
        .iter()
        .find(|r| r["recipient"] == "lee@clinic.example.test" && r["kind"] == "notice-made-secure")
        .unwrap();
    let spooled = sb.data_dir().join("spool").join(format!(
        "{}.eml",
        notice["notification_id"].as_str().unwrap()
    ));
    let spooled = wait_for(Duration::from_secs(30), || std::fs::read(&spooled).ok()).unwrap();
    let parsed = mail_parser::MessageParser::default()
        .parse(&spooled)
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("secure notifications only"), "{text}");
    assert!(
        !String::from_utf8_lossy(&spooled).contains("All values are normal"),
        "a notice carries no content"
    );
    // A bounce address that was not handed out is refused.
    let forged = bounce.replace(&id, "0000000000000001");
    let out = smtp_send(sb.smtp_port, "<>", &[&forged], dsn.as_bytes(), None);
    assert_eq!(code(&out["rcpt"][&forged]), 550);
    daemon.stop();
}

/// A reply to a secure conversation is not filed but kept for staff (issue 23: nothing is
/// dropped after 250), and the person is told, content-free, to use the link: once per
/// message, at most `policy.notices_per_hour` an hour — a notice over the limit is recorded as
/// suppressed, with why, never silently swallowed.
#[test]
fn secure_thread_replies_are_held_and_each_told_within_the_limit() {
    let sb = Sandbox::with_keyring("[policy]\nnotices_per_hour = 2\n");
    let secure = sb.new_thread("secure", "Biopsy", "Please log in to read your results.");
    let daemon = Daemon::start(&sb, &[]);
    notification_to(&sb, JANE);
    // Secure notifications carry no token; a token can still exist (a thread that was switched
    // to secure mode after a convenience notification). Mint one to test the rule.
    let ring = Keyring::load(&sb.keyring_path()).unwrap();
    // The participant's id, through the library (the CLI does not print ids of participants).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt
        .block_on(sealpost::store::Store::open(
            &format!("sqlite://{}", sb.data_dir().join("sealpost.db").display()),
            std::sync::Arc::new(Keyring::load(&sb.keyring_path()).unwrap()),
            sealpost::clock::Clock::system(),
        ))
        .unwrap();
    let view = rt.block_on(store.thread(secure.parse().unwrap())).unwrap();
    let jane = view
        .participants
        .iter()
        .find(|p| p.address.as_str() == JANE)
        .unwrap()
        .id;
    let token = ReplyToken::issue(&ring, view.id, jane, sealpost::clock::Clock::system().now());
    let to = token.address("reply.example.test");
    for i in 0..3 {
        let raw = format!(
            "From: {JANE}\r\nTo: {to}\r\nSubject: Re: New secure message\r\nMessage-ID: <s{i}@x.test>\r\n\r\nWhat were the results? ({i})\r\n"
        );
        assert_eq!(
            code(&smtp_send(sb.smtp_port, JANE, &[&to], raw.as_bytes(), None)["data"]),
            250
        );
    }
    assert_eq!(messages(&sb, &secure).len(), 1, "not filed");
    let held = sb.run(&["held", "list"]).ok().json_lines();
    assert_eq!(held.len(), 3, "each one kept for staff: {held:?}");
    assert!(
        held.iter().all(|h| h["reason"] == "secure-thread"),
        "{held:?}"
    );
    // Two notices went out; the third is recorded as suppressed, with why.
    let rows = wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter()
            .filter(|r| r["kind"] == "notice-secure" && r["status"] == "sent")
            .count()
            == 2
    });
    let suppressed: Vec<_> = rows
        .iter()
        .filter(|r| r["kind"] == "notice-secure" && r["status"] == "suppressed")
        .collect();
    assert_eq!(suppressed.len(), 1, "{rows:#?}");
    assert!(
        suppressed[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("notices_per_hour"),
        "{rows:#?}"
    );
    let notice = rows
        .iter()
        .find(|r| r["kind"] == "notice-secure" && r["status"] == "sent")
        .unwrap();
    let file = std::fs::read(sb.data_dir().join("spool").join(format!(
        "{}.eml",
        notice["notification_id"].as_str().unwrap()
    )))
    .unwrap();
    let seen = common::visible_text(&file);
    assert!(seen.contains("auto-replied"));
    assert!(
        seen.contains("kept for the staff of Lee Family Practice"),
        "{seen}"
    );
    assert!(
        !seen.contains("What were the results"),
        "a notice never quotes the mail"
    );
    assert!(!seen.contains("Please log in to read"), "nor the thread");
    daemon.stop();
}

#[test]
fn oversized_garbage_and_half_finished_sessions() {
    let (sb, daemon, thread) = setup("max_message_bytes = 4096\n");
    let notification = notification_to(&sb, JANE);
    let (to, raw) = client_reply(&notification, JANE, &"big ".repeat(4000), "big@x.test");
    let out = smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    assert_eq!(code(&out["data"]), 552, "{out}");

    let mut s = TcpStream::connect(("127.0.0.1", sb.smtp_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut conv = |line: &str, expect: &str| {
        if !line.is_empty() {
            s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        }
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(got.starts_with(expect), "{line:?} -> {got:?}");
    };
    conv("", "220");
    conv("MAIL FROM:<jane@example.test>", "503");
    conv("HELLO there", "500");
    conv("EHLO client.example.test", "250");
    conv("RCPT TO:<x@y>", "503");
    conv("DATA", "503");
    conv("NOOP", "250");
    conv("VRFY jane", "252");
    conv("MAIL FROM:<jane@example.test> SIZE=999999", "552");
    conv("MAIL FROM:<jane@example.test>", "250");
    conv(&format!("RCPT TO:<{to}>"), "250");
    conv("DATA", "354");
    // Half a message, then the client goes away.
    s.write_all(b"From: jane@example.test\r\nSubject: half\r\n\r\nThis never ends")
        .unwrap();
    drop(s);
    // The daemon says so once it has seen the connection go: only then is "nothing filed"
    // a fact rather than a race.
    common::wait_for(Duration::from_secs(20), || {
        sb.daemon_log()
            .contains("client disconnected during DATA; nothing filed")
            .then_some(())
    })
    .expect("the daemon notices the dropped session");
    assert_eq!(
        messages(&sb, &thread).len(),
        1,
        "nothing filed from a broken session"
    );

    // Too many errors end the session.
    let mut s = TcpStream::connect(("127.0.0.1", sb.smtp_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut all = String::new();
    s.write_all(b"EHLO x\r\n").unwrap();
    for _ in 0..12 {
        let _ = s.write_all(b"BOGUS\r\n");
    }
    let _ = s.read_to_string(&mut all);
    assert!(all.contains("421 4.7.0"), "{all}");
    daemon.stop();
}

#[test]
fn starttls_session() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = common::self_signed_cert(dir.path());
    let (sb, daemon, thread) = setup(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    ));
    let notification = notification_to(&sb, JANE);
    let (to, raw) = client_reply(&notification, JANE, "Sent over TLS.", "tls@x.test");
    let out = smtp_send(sb.smtp_port, JANE, &[&to], &raw, Some(&cert));
    assert!(
        out["ehlo"][1].as_str().unwrap().contains("STARTTLS"),
        "{out}"
    );
    assert_eq!(out["tls"], true);
    assert_eq!(code(&out["data"]), 250);
    assert_eq!(messages(&sb, &thread)[1]["body"], "Sent over TLS.");
    daemon.stop();
}

#[test]
fn empty_reply_is_held_with_a_notice() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);
    // The person hit Reply and Send without typing anything.
    let (to, raw) = client_reply(&notification, JANE, "", "empty@x.test");
    assert_eq!(
        code(&smtp_send(sb.smtp_port, JANE, &[&to], &raw, None)["data"]),
        250
    );
    assert_eq!(messages(&sb, &thread).len(), 1, "nothing filed");
    let rows = wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter()
            .any(|r| r["kind"] == "notice-empty" && r["status"] == "sent")
    });
    assert_eq!(
        rows.iter().filter(|r| r["kind"] == "notice-empty").count(),
        1
    );
    daemon.stop();
}

#[test]
fn connections_over_the_limit_get_421() {
    let (sb, daemon, _thread) = setup("max_connections = 1\n");
    let mut first = TcpStream::connect(("127.0.0.1", sb.smtp_port)).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = first.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220"));
    let mut second = TcpStream::connect(("127.0.0.1", sb.smtp_port)).unwrap();
    second
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut all = String::new();
    let _ = second.read_to_string(&mut all);
    assert!(all.starts_with("421 4.3.2"), "{all}");
    drop(first);
    daemon.stop();
}

#[test]
fn sessions_get_421_when_the_daemon_stops() {
    let (sb, daemon, _thread) = setup("");
    let mut s = TcpStream::connect(("127.0.0.1", sb.smtp_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"220"));
    s.write_all(b"EHLO client.example.test\r\n").unwrap();
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"250"));
    let out = daemon.stop();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.starts_with("421 4.3.0"), "{rest}");
    assert!(out.stderr.contains("stopped"), "{}", out.stderr);
}

#[test]
fn closed_threads_and_removed_participants() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);
    let (to, raw) = client_reply(&notification, JANE, "Is this still open?", "closed@x.test");
    sb.run(&["thread", "close", &thread]).ok();
    let post = sb.post(&thread, LEE, "one more");
    assert_ne!(post.status, 0);
    assert!(post.stderr.contains("closed"), "{}", post.stderr);

    // A reply to a closed thread is accepted, not filed, and answered with one notice.
    assert_eq!(
        code(&smtp_send(sb.smtp_port, JANE, &[&to], &raw, None)["data"]),
        250
    );
    assert_eq!(messages(&sb, &thread).len(), 1);
    wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter()
            .any(|r| r["kind"] == "notice-closed" && r["status"] == "sent")
    });

    // A removed participant's reply address stops working at RCPT.
    sb.run(&["thread", "remove-participant", &thread, "--address", JANE])
        .ok();
    let out = smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    assert_eq!(code(&out["rcpt"][&to]), 550, "{out}");
    assert!(out["data"].is_null());
    daemon.stop();
}

/// The person deleted the marker line and their client pasted the notification without quote
/// marks, under an attribution in a language the patterns do not know: the copy is recognised
/// by its words (the store knows what was sent) and only the typed text is filed.
#[test]
fn a_pasted_copy_of_the_notification_is_recognised_by_its_words() {
    let (sb, daemon, thread) = setup("");
    let notification = notification_to(&sb, JANE);
    let n = mail_parser::MessageParser::default()
        .parse(&notification)
        .unwrap();
    let reply_to = common::reply_address(&n);
    let pasted: String = n
        .body_text(0)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("Write your reply above"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    assert!(pasted.contains("All values are normal."), "{pasted}");
    let typed = "Köszönöm szépen, kedden jövök.";
    let raw = format!(
        "From: Jane Doe <{JANE}>\r\nTo: {reply_to}\r\nSubject: Re: Lab results\r\nMessage-ID: <hu1@mail.example.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{typed}\r\n\r\n2026. nov. 22., vas 9:00 időpontban Lee Family Practice ezt írta:\r\n\r\n{pasted}"
    );
    let out = smtp_send(sb.smtp_port, JANE, &[&reply_to], raw.as_bytes(), None);
    assert_eq!(code(&out["data"]), 250, "{out}");
    let msgs = messages(&sb, &thread);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1]["body"], typed);
    daemon.stop();
}
