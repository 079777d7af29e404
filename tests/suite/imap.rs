//! The IMAP door against a real Dovecot started by the test: IDLE, folders, reconnects, TLS,
//! a backlog with a crash in the middle.

use crate::common;

use std::time::Duration;

use common::{Daemon, Dovecot, Sandbox, client_reply, messages, notification_to, wait_for};

const JANE: &str = "jane@example.test";
const PROCESSED: &str = "Sealpost.Processed";
const REJECTED: &str = "Sealpost.Rejected";

fn imap_config(dovecot: &Dovecot, tls: &str, port: u16, extra: &str) -> String {
    let pw = dovecot.dir.path().join("sealpost-password");
    std::fs::write(&pw, "pw-sealpost\n").unwrap();
    format!(
        "[imap]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nusername = \"sealpost\"\npassword_file = \"{}\"\n{extra}",
        pw.display()
    )
}

fn setup(dovecot: &Dovecot) -> (Sandbox, String) {
    let sb = Sandbox::with_keyring(&imap_config(dovecot, "none", dovecot.imap_port, ""));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    (sb, thread)
}

fn wait_filed(sb: &Sandbox, thread: &str, n: usize) -> Vec<serde_json::Value> {
    wait_for(Duration::from_secs(60), || {
        let m = messages(sb, thread);
        (m.len() >= n).then_some(m)
    })
    .unwrap_or_else(|| {
        panic!(
            "{n} messages were not filed in time: {:?}",
            messages(sb, thread)
        )
    })
}

#[test]
fn replies_through_idle_forged_mail_rejected_and_reconnects() {
    let mut dovecot = Dovecot::start();
    let (sb, thread) = setup(&dovecot);
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    let mut imap = dovecot.client("sealpost");

    // A valid reply, appended while the poller idles.
    let (_, raw) = client_reply(
        &notification,
        JANE,
        "Thanks, see you on Tuesday.",
        "imap1@x.test",
    );
    imap.append("INBOX", &raw);
    let msgs = wait_filed(&sb, &thread, 2);
    assert_eq!(msgs[1]["body"], "Thanks, see you on Tuesday.");
    assert_eq!(msgs[1]["via"], "imap");
    wait_for(Duration::from_secs(20), || {
        (imap.count(PROCESSED) == 1).then_some(())
    })
    .expect("moved to processed");
    assert_eq!(imap.count("INBOX"), 0);
    // The poller's state and its polls show in /metrics.
    let api = common::http::Api { port: sb.api_port };
    let metrics = wait_for(Duration::from_secs(20), || {
        let text = api.call("GET", "/metrics", None, None).body;
        let text = text.as_str()?.to_owned();
        text.contains("sealpost_imap_state{state=\"idle\"} 1")
            .then_some(text)
    })
    .expect("the poller idles");
    assert!(
        metrics.contains(
            "sealpost_inbound_messages_total{door=\"imap\",outcome=\"filed\",reason=\"\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("sealpost_imap_polls_total{result=\"ok\"}"),
        "{metrics}"
    );

    // A forged one: rejected folder, not filed.
    let forged = b"From: jane@example.test\r\nTo: reply+aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@reply.example.test\r\nSubject: Re: Lab results\r\nMessage-ID: <forged@x.test>\r\n\r\nlet me in\r\n";
    imap.append("INBOX", forged);
    wait_for(Duration::from_secs(20), || {
        (imap.count(REJECTED) == 1).then_some(())
    })
    .expect("moved to rejected");
    assert_eq!(messages(&sb, &thread).len(), 2);

    // Dovecot goes away and comes back; the poller reconnects by itself.
    drop(imap);
    dovecot.stop();
    let log = sb.dir.path().join("daemon.log");
    wait_for(Duration::from_secs(30), || {
        std::fs::read_to_string(&log)
            .ok()?
            .contains("IMAP connection lost")
            .then_some(())
    })
    .expect("the poller notices that the server went away");
    dovecot.run();
    let mut imap = dovecot.client("sealpost");
    let (_, raw) = client_reply(
        &notification,
        JANE,
        "Back again after the restart.",
        "imap2@x.test",
    );
    imap.append("INBOX", &raw);
    let msgs = wait_filed(&sb, &thread, 3);
    assert_eq!(msgs[2]["body"], "Back again after the restart.");
    let out = daemon.stop();
    assert!(
        out.stderr.matches("IMAP connected").count() >= 2,
        "{}",
        out.stderr
    );
}

#[test]
fn imaps_needs_the_ca_file() {
    let dovecot = Dovecot::start();
    let ca = format!("ca_file = \"{}\"\n", dovecot.cert.display());
    let sb = Sandbox::with_keyring(&imap_config(&dovecot, "implicit", dovecot.imaps_port, &ca));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    let (_, raw) = client_reply(&notification, JANE, "Over IMAPS.", "imaps@x.test");
    dovecot.client("sealpost").append("INBOX", &raw);
    assert_eq!(wait_filed(&sb, &thread, 2)[1]["body"], "Over IMAPS.");
    daemon.stop();

    // The same without the CA: the certificate is refused and nothing is read.
    let sb = Sandbox::with_keyring(&imap_config(&dovecot, "implicit", dovecot.imaps_port, ""));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    // The poller's attempt ends in the certificate's refusal (logged): nothing was read.
    wait_for(Duration::from_secs(30), || {
        let log = sb.daemon_log();
        (log.contains("TLS") && log.to_lowercase().contains("certificate")).then_some(())
    })
    .unwrap_or_else(|| panic!("no certificate refusal logged:\n{}", sb.daemon_log()));
    assert_eq!(messages(&sb, &thread).len(), 1);
    daemon.stop();
}

#[test]
fn backlog_with_a_crash_is_filed_exactly_once() {
    const N: usize = 500;
    let dovecot = Dovecot::start();
    let (sb, thread) = setup(&dovecot);
    // One run to get the notification (and its token) out.
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    daemon.stop();

    let mut imap = dovecot.client("sealpost");
    for k in 0..N {
        let (_, raw) = client_reply(
            &notification,
            JANE,
            &format!("Backlog reply {k}"),
            &format!("backlog-{k}@x.test"),
        );
        imap.append("INBOX", &raw);
    }
    let daemon = Daemon::start(&sb, &[]);
    wait_for(Duration::from_secs(120), || {
        (imap.count(PROCESSED) >= 50).then_some(())
    })
    .expect("progress");
    daemon.kill();
    let done_before = imap.count(PROCESSED);
    assert!(
        (done_before as usize) < N,
        "the crash came in the middle of the backlog"
    );

    let daemon = Daemon::start(&sb, &[]);
    wait_for(Duration::from_secs(240), || {
        (imap.count("INBOX") == 0).then_some(())
    })
    .expect("the mailbox ends empty");
    daemon.stop();
    let msgs = messages(&sb, &thread);
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for m in &msgs[1..] {
        *seen
            .entry(m["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    for k in 0..N {
        assert_eq!(
            seen.get(&format!("Backlog reply {k}")),
            Some(&1),
            "reply {k}"
        );
    }
    assert_eq!(msgs.len(), N + 1);
    assert_eq!(imap.count(PROCESSED) as usize, N);
}

#[test]
fn oversized_messages_are_rejected_unread() {
    let dovecot = Dovecot::start();
    let sb = Sandbox::with_keyring(&format!(
        "max_message_bytes = 4096\n{}",
        imap_config(&dovecot, "none", dovecot.imap_port, "")
    ));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    let (_, raw) = client_reply(&notification, JANE, &"big ".repeat(3000), "big@x.test");
    let mut imap = dovecot.client("sealpost");
    imap.append("INBOX", &raw);
    wait_for(Duration::from_secs(30), || {
        (imap.count(REJECTED) == 1).then_some(())
    })
    .expect("moved to rejected");
    assert_eq!(messages(&sb, &thread).len(), 1);
    let out = daemon.stop();
    assert!(out.stderr.contains("too-large"), "{}", out.stderr);
}

#[test]
fn a_real_client_reads_over_imap_and_replies() {
    let dovecot = Dovecot::start();
    let (sb, thread) = setup(&dovecot);
    let daemon = Daemon::start(&sb, &[]);
    // The notification lands in Jane's mailbox on the same Dovecot.
    let notification = notification_to(&sb, JANE);
    dovecot.client("jane").append("INBOX", &notification);
    // Jane's mail client reads it over IMAP and replies; her mail system (dovecot-lda standing
    // in for an MTA) delivers the reply into the gateway's mailbox.
    let lda = [
        "/usr/lib/dovecot/dovecot-lda",
        "/usr/libexec/dovecot/dovecot-lda",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("dovecot-lda is part of dovecot-core");
    let mta = dovecot.dir.path().join("mta.sh");
    std::fs::write(
        &mta,
        format!(
            "#!/bin/sh\nexec {lda} -c {} -d sealpost\n",
            dovecot.dir.path().join("dovecot.conf").display()
        ),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&mta)
        .status()
        .unwrap();
    common::snail_reply(
        &format!("imap://jane@127.0.0.1:{}/INBOX", dovecot.imap_port),
        mta.to_str().unwrap(),
        &[format!(
            "-Spassword-jane@127.0.0.1:{}=pw-jane",
            dovecot.imap_port
        )],
        "Read it in my mail app, thank you!",
    );
    let msgs = wait_filed(&sb, &thread, 2);
    assert_eq!(msgs[1]["body"], "Read it in my mail app, thank you!");
    assert_eq!(msgs[1]["via"], "imap");
    daemon.stop();
}

#[test]
fn starttls_polling_and_copy_expunge_without_idle_or_move() {
    // A server that offers neither IDLE nor MOVE: the poller polls, and moves by COPY,
    // \Deleted and UID EXPUNGE.
    let dovecot = Dovecot::start_with(
        "protocol imap {\n  imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE UIDPLUS\n}\n",
    );
    let ca = format!(
        "ca_file = \"{}\"\npoll_interval_secs = 1\n",
        dovecot.cert.display()
    );
    let sb = Sandbox::with_keyring(&imap_config(&dovecot, "starttls", dovecot.imap_port, &ca));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    let (_, raw) = client_reply(&notification, JANE, "Polled, over STARTTLS.", "poll@x.test");
    let mut imap = dovecot.client("sealpost");
    imap.append("INBOX", &raw);
    assert_eq!(
        wait_filed(&sb, &thread, 2)[1]["body"],
        "Polled, over STARTTLS."
    );
    wait_for(Duration::from_secs(20), || {
        (imap.count(PROCESSED) == 1).then_some(())
    })
    .expect("copied to processed");
    wait_for(Duration::from_secs(20), || {
        (imap.count("INBOX") == 0).then_some(())
    })
    .expect("expunged from the inbox");
    let out = daemon.stop();
    assert!(
        out.stderr.contains("idle=false") && out.stderr.contains("can_move=false"),
        "{}",
        out.stderr
    );
}

/// Behind IMAP, Sealpost cannot check SPF: it believes the topmost `Authentication-Results`
/// of the configured authserv-id (the practice's own mail server) and nothing else.
#[test]
fn trusted_authentication_results_decide_on_the_imap_door() {
    let dovecot = Dovecot::start();
    let auth = "[auth]\npolicy = \"require-dmarc-pass\"\ndns_servers = [\"127.0.0.1:9\"]\n\
                trusted_authserv_ids = [\"mx.practice.test\"]\n";
    let sb = Sandbox::with_keyring(&imap_config(&dovecot, "none", dovecot.imap_port, auth));
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, JANE);
    let mut imap = dovecot.client("sealpost");
    let pass = "Authentication-Results: mx.practice.test;\r\n spf=pass smtp.mailfrom=jane@example.test;\r\n dkim=pass header.d=example.test;\r\n dmarc=pass (p=REJECT) header.from=example.test\r\n";
    let claim = "Authentication-Results: mx.example.test; dmarc=pass header.from=example.test\r\n";
    let fail = "Authentication-Results: mx.practice.test; spf=fail smtp.mailfrom=jane@example.test; dmarc=fail header.from=example.test\r\n";
    for (n, (headers, text)) in [
        (pass, "Believed: the practice's server checked me."),
        (claim, "Claimed: a header anyone could write."),
        (
            &*format!("{fail}{pass}"),
            "Failed, with a forged pass below.",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, raw) = client_reply(&notification, JANE, text, &format!("ar{n}@x.test"));
        let mut with = headers.as_bytes().to_vec();
        with.extend_from_slice(&raw);
        imap.append("INBOX", &with);
    }
    wait_for(Duration::from_secs(60), || {
        (imap.count("INBOX") == 0).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "every message handled ({} left in the inbox); the daemon said:\n{}",
            imap.count("INBOX"),
            sb.daemon_log()
        )
    });
    let msgs = messages(&sb, &thread);
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(
        msgs[1]["body"],
        "Believed: the practice's server checked me."
    );
    assert!(
        msgs[1]["auth"]
            .as_str()
            .unwrap()
            .ends_with("(from mx.practice.test)"),
        "{msgs:?}"
    );
    let show = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(show["held"], 2);
    let held = sb.run(&["held", "list"]).ok().json_lines();
    assert!(
        held.iter()
            .all(|h| h["reason"] == "auth-failed" && h["door"] == "imap")
    );
    daemon.stop();
}

/// Two instances on one database watch one mailbox: one poller runs, the other stands by.
/// When the first stops renewing its lease — its task gone without giving the lease up, as a
/// process that froze or died — the second takes the mailbox over once the lease runs out
/// (moved forward here on the pollers' clock), and files what arrived meanwhile, once.
#[test]
fn the_mailbox_moves_to_a_second_poller_when_the_first_stops_renewing() {
    use std::sync::Arc;

    use sealpost::inbound::imap::{LEASE, LEASE_SECS, Poller};
    use sealpost::jobs::Holder;

    let dovecot = Dovecot::start();
    let (sb, thread) = setup(&dovecot);
    let settings = sealpost::config::load(Some(&sb.config)).unwrap().settings;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut imap = dovecot.client("sealpost");
    rt.block_on(async {
        let keyring = Arc::new(sealpost::crypto::Keyring::load(&settings.keys.path).unwrap());
        let clock = sealpost::clock::Clock::adjustable();
        let store = sealpost::store::Store::open(&settings.database.url, keyring.clone(), clock.clone())
            .await
            .unwrap();
        let thread_id: sealpost::domain::ThreadId = thread.parse().unwrap();
        let jane = store
            .thread(thread_id)
            .await
            .unwrap()
            .participants
            .into_iter()
            .find(|p| p.address.as_str() == JANE)
            .unwrap()
            .id;
        let reply_to = sealpost::crypto::ReplyToken::issue(&keyring, thread_id, jane, clock.now())
            .address(&settings.smtp.reply_domain);
        let reply = |n: u32| {
            format!(
                "From: {JANE}\r\nTo: {reply_to}\r\nSubject: Re: Lab results\r\nMessage-ID: <lease{n}@x.test>\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\n\r\nAnswer {n}.\r\n"
            )
            .into_bytes()
        };
        let checker = Arc::new(
            sealpost::inbound::auth::Checker::new(&settings.auth, &settings.smtp.hostname).unwrap(),
        );
        let pipeline = sealpost::app::pipeline(
            &settings,
            &store,
            Arc::new(tokio::sync::Notify::new()),
            checker,
        );
        let poller = || {
            Poller::new(&settings.imap, settings.smtp.max_message_bytes, pipeline.clone(), store.clone())
                .unwrap()
        };
        let holder_now = || async { store.lease_holder(LEASE).await.unwrap() };
        let filed = |n: usize| {
            let store = store.clone();
            async move {
                for _ in 0..600 {
                    let m = store.thread(thread_id).await.unwrap().messages;
                    if m.len() >= n {
                        return m;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("{n} messages were not filed in time");
            }
        };
        let (a, b) = (Holder::ephemeral(), Holder::ephemeral());
        let stop = tokio_util::sync::CancellationToken::new();
        let first = tokio::spawn(poller().run(a.clone(), stop.clone()));
        for _ in 0..300 {
            if holder_now().await.as_deref() == Some(a.id()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(holder_now().await.as_deref(), Some(a.id()));
        let second = tokio::spawn(poller().run(b.clone(), stop.clone()));

        imap.append("INBOX", &reply(1));
        assert_eq!(filed(2).await[1].body, "Answer 1.");
        assert_eq!(holder_now().await.as_deref(), Some(a.id()), "the second stood by");

        // The first stops renewing. Until its lease runs out the mailbox is still its.
        first.abort();
        let _ = first.await;
        imap.append("INBOX", &reply(2));
        clock.advance(LEASE_SECS - 1);
        assert_eq!(holder_now().await.as_deref(), Some(a.id()));
        clock.advance(2);
        for _ in 0..300 {
            if holder_now().await.as_deref() == Some(b.id()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(holder_now().await.as_deref(), Some(b.id()), "taken over");
        let messages = filed(3).await;
        assert_eq!(messages[2].body, "Answer 2.");

        // A clean stop gives the lease up at once.
        stop.cancel();
        second.await.unwrap();
        assert_eq!(holder_now().await, None);
        let bodies: Vec<_> = store.thread(thread_id).await.unwrap().messages.into_iter().map(|m| m.body).collect();
        assert_eq!(bodies.len(), 3, "each reply filed once: {bodies:?}");
        store.close().await;
    });
}
