//! Sender authentication end to end: the daemon's own resolver asks a real DNS server (the
//! test's, on 127.0.0.1) for SPF, DKIM and DMARC records, while python's smtplib delivers
//! replies. Each patient lives at a domain of their own, whose records say one thing.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::dns::TestDns;
use common::{Daemon, Sandbox, client_reply, messages, notification_to, smtp_send};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

const B64: data_encoding::Encoding = data_encoding::BASE64;

/// A DKIM key of one of the test's domains.
enum Key {
    Ed25519(Vec<u8>),
    Rsa(String),
}

impl Key {
    fn ed25519() -> Key {
        Key::Ed25519(Ed25519Key::generate_pkcs8().unwrap())
    }

    /// A 2048-bit RSA key made by openssl, in PKCS#8 PEM.
    fn rsa(dir: &Path) -> Key {
        let path = dir.join("rsa.pem");
        let ok = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .output()
            .expect("openssl is required")
            .status
            .success();
        assert!(ok, "openssl genpkey failed");
        Key::Rsa(std::fs::read_to_string(path).unwrap())
    }

    /// The DKIM record to publish at `selector._domainkey.domain`.
    fn record(&self, dir: &Path) -> String {
        match self {
            Key::Ed25519(der) => {
                let key = Ed25519Key::from_pkcs8_der(der).unwrap();
                format!("v=DKIM1; k=ed25519; p={}", B64.encode(&key.public_key()))
            }
            Key::Rsa(pem) => {
                let path = dir.join("rsa-for-pub.pem");
                std::fs::write(&path, pem).unwrap();
                let out = Command::new("openssl")
                    .args(["pkey", "-pubout", "-outform", "DER", "-in"])
                    .arg(&path)
                    .output()
                    .unwrap();
                assert!(out.status.success());
                format!("v=DKIM1; k=rsa; p={}", B64.encode(&out.stdout))
            }
        }
    }

    /// `raw` with a DKIM-Signature for `domain` prepended.
    fn sign(&self, domain: &str, raw: &[u8]) -> Vec<u8> {
        let headers = ["From", "To", "Subject", "Date", "Message-ID"];
        let signature = match self {
            Key::Ed25519(der) => DkimSigner::from_key(Ed25519Key::from_pkcs8_der(der).unwrap())
                .domain(domain)
                .selector("s1")
                .headers(headers)
                .sign(raw)
                .unwrap(),
            Key::Rsa(pem) => {
                let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap();
                DkimSigner::from_key(RsaKey::<Sha256>::from_key_der(der).unwrap())
                    .domain(domain)
                    .selector("s1")
                    .headers(headers)
                    .sign(raw)
                    .unwrap()
            }
        };
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(raw);
        out
    }
}

struct World {
    sb: Sandbox,
    dns: TestDns,
    daemon: Option<Daemon>,
}

impl World {
    fn start(policy: &str) -> World {
        let dns = TestDns::start();
        let sb = Sandbox::with_keyring(&format!(
            "[auth]\npolicy = \"{policy}\"\ndns_servers = [\"{}\"]\ndns_timeout_secs = 1\n",
            dns.addr
        ));
        World {
            daemon: Some(Daemon::start(&sb, &[])),
            sb,
            dns,
        }
    }

    /// A convenience thread with `jane@domain`; returns the thread and Jane's notification.
    fn thread_with(&self, domain: &str) -> (String, Vec<u8>) {
        let jane = format!("jane@{domain}");
        self.sb.consent(&jane);
        let out = self
            .sb
            .run_with_stdin(
                &[
                    "thread",
                    "new",
                    "--from",
                    "Dr Lee <lee@clinic.example.test>",
                    "--to",
                    &jane,
                    "--subject",
                    "Your results",
                    "--mode",
                    "convenience",
                ],
                "Your results are in; all is well.",
            )
            .ok()
            .json();
        let thread = out["thread_id"].as_str().unwrap().to_owned();
        (thread, notification_to(&self.sb, &jane))
    }

    /// Jane's reply from `domain`, signed by `key` when given, sent with `mail_from` as the
    /// envelope sender; returns the thread and the DATA reply.
    fn reply(
        &self,
        domain: &str,
        mail_from: &str,
        sign: Option<(&Key, &str)>,
        tamper: bool,
    ) -> (String, Value) {
        let (thread, notification) = self.thread_with(domain);
        let (reply_to, mut raw) = client_reply(
            &notification,
            &format!("Jane <jane@{domain}>"),
            "Thank you, see you on Tuesday.",
            &format!("reply-{domain}@mail.{domain}"),
        );
        if let Some((key, d)) = sign {
            raw = key.sign(d, &raw);
        }
        if tamper {
            let text = String::from_utf8(raw).unwrap();
            raw = text
                .replacen(
                    "see you on Tuesday",
                    "send my records to fraud@evil.test",
                    1,
                )
                .into_bytes();
        }
        let out = smtp_send(self.sb.smtp_port, mail_from, &[&reply_to], &raw, None);
        (thread, out["data"].clone())
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop();
        }
    }
}

fn filed(data: &Value) -> bool {
    data[0] == 250 && data[1].as_str().unwrap().contains("Filed")
}

fn held(data: &Value) -> bool {
    data[0] == 250 && data[1].as_str().unwrap().contains("review")
}

/// The held messages, newest first, as `sealpost held list` prints them.
fn held_list(sb: &Sandbox) -> Vec<Value> {
    sb.run(&["held", "list"]).ok().json_lines()
}

fn held_for(sb: &Sandbox, thread: &str) -> Value {
    held_list(sb)
        .into_iter()
        .find(|h| h["thread_id"] == thread)
        .unwrap_or_else(|| panic!("nothing held for {thread}: {:?}", held_list(sb)))
}

const SPF_LOCAL: &str = "v=spf1 ip4:127.0.0.1 -all";
const SPF_ELSEWHERE: &str = "v=spf1 ip4:192.0.2.1 -all";

#[test]
fn spf_results_decide_for_domains_without_dmarc() {
    let w = World::start("require-dmarc-pass");
    w.dns.txt("spf-pass.test", SPF_LOCAL);
    w.dns.txt("spf-fail.test", SPF_ELSEWHERE);
    w.dns.txt("spf-softfail.test", "v=spf1 ip4:192.0.2.1 ~all");
    // spf-none.test publishes nothing at all.

    let (thread, data) = w.reply("spf-pass.test", "jane@spf-pass.test", None, false);
    assert!(filed(&data), "{data}");
    let auth = messages(&w.sb, &thread)[1]["auth"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.starts_with("spf=pass smtp.mailfrom=spf-pass.test;"),
        "{auth}"
    );
    assert!(
        auth.contains("dmarc=none") && auth.ends_with("(checked by Sealpost)"),
        "{auth}"
    );
    // A second reply from the same domain is checked from the resolver's cache: the SPF
    // record, and the DMARC record's absence, were each asked for once.
    let (reply_to, raw) = client_reply(
        &notification_to(&w.sb, "jane@spf-pass.test"),
        "Jane <jane@spf-pass.test>",
        "And one more question.",
        "second@mail.spf-pass.test",
    );
    let out = smtp_send(
        w.sb.smtp_port,
        "jane@spf-pass.test",
        &[&reply_to],
        &raw,
        None,
    );
    assert!(filed(&out["data"]), "{out}");
    assert_eq!(messages(&w.sb, &thread).len(), 3);
    assert_eq!(w.dns.asked("spf-pass.test"), 1, "{:?}", w.dns.asked_all());
    assert_eq!(
        w.dns.asked("_dmarc.spf-pass.test"),
        1,
        "{:?}",
        w.dns.asked_all()
    );

    for domain in ["spf-fail.test", "spf-softfail.test", "spf-none.test"] {
        let (thread, data) = w.reply(domain, &format!("jane@{domain}"), None, false);
        assert!(held(&data), "{domain}: {data}");
        assert_eq!(messages(&w.sb, &thread).len(), 1, "{domain}: nothing filed");
        let h = held_for(&w.sb, &thread);
        assert_eq!(h["reason"], "auth-failed", "{domain}");
        let expected = match domain {
            "spf-fail.test" => "spf=fail",
            "spf-softfail.test" => "spf=softfail",
            _ => "spf=none",
        };
        assert!(h["auth"].as_str().unwrap().starts_with(expected), "{h}");
    }
}

#[test]
fn dkim_and_dmarc_decide_whatever_spf_says() {
    let w = World::start("require-dmarc-pass");
    let dir = tempfile::tempdir().unwrap();
    let ed = Key::ed25519();
    let rsa = Key::rsa(dir.path());

    // DKIM (Ed25519) aligned, DMARC p=reject, no SPF: DMARC passes through DKIM.
    w.dns
        .txt("s1._domainkey.dkim-ed.test", &ed.record(dir.path()));
    w.dns.txt("_dmarc.dkim-ed.test", "v=DMARC1; p=reject");
    let (thread, data) = w.reply(
        "dkim-ed.test",
        "jane@dkim-ed.test",
        Some((&ed, "dkim-ed.test")),
        false,
    );
    assert!(filed(&data), "{data}");
    let auth = messages(&w.sb, &thread)[1]["auth"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.contains("dkim=pass header.d=dkim-ed.test")
            && auth.contains("dmarc=pass policy.dmarc=reject"),
        "{auth}"
    );

    // The same with RSA 2048 and SPF failing: DKIM alone carries DMARC.
    w.dns
        .txt("s1._domainkey.dkim-rsa.test", &rsa.record(dir.path()));
    w.dns.txt("_dmarc.dkim-rsa.test", "v=DMARC1; p=quarantine");
    w.dns.txt("dkim-rsa.test", SPF_ELSEWHERE);
    let (_, data) = w.reply(
        "dkim-rsa.test",
        "jane@dkim-rsa.test",
        Some((&rsa, "dkim-rsa.test")),
        false,
    );
    assert!(filed(&data), "{data}");

    // A signature broken in transit (the body changed) and no SPF: DMARC fails.
    w.dns
        .txt("s1._domainkey.dkim-broken.test", &ed.record(dir.path()));
    w.dns.txt("_dmarc.dkim-broken.test", "v=DMARC1; p=reject");
    let (thread, data) = w.reply(
        "dkim-broken.test",
        "jane@dkim-broken.test",
        Some((&ed, "dkim-broken.test")),
        true,
    );
    assert!(held(&data), "{data}");
    let auth = held_for(&w.sb, &thread)["auth"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.contains("dkim=neutral") && auth.contains("dmarc=fail"),
        "{auth}"
    );

    // No signature, and SPF passes only for an unaligned envelope domain: DMARC fails.
    w.dns.txt("_dmarc.dkim-missing.test", "v=DMARC1; p=none");
    w.dns.txt("esp.test", SPF_LOCAL);
    let (thread, data) = w.reply("dkim-missing.test", "jane@dkim-missing.test", None, false);
    assert!(held(&data), "{data}");
    let auth = held_for(&w.sb, &thread)["auth"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.contains("dkim=none") && auth.contains("dmarc=fail policy.dmarc=none"),
        "{auth}"
    );

    // A valid signature, but by another domain (an ESP's): not aligned, DMARC fails.
    w.dns.txt("s1._domainkey.esp.test", &ed.record(dir.path()));
    w.dns.txt("_dmarc.unaligned.test", "v=DMARC1; p=quarantine");
    let (thread, data) = w.reply(
        "unaligned.test",
        "jane@unaligned.test",
        Some((&ed, "esp.test")),
        false,
    );
    assert!(held(&data), "{data}");
    let auth = held_for(&w.sb, &thread)["auth"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        auth.contains("dkim=pass header.d=esp.test") && auth.contains("dmarc=fail"),
        "{auth}"
    );

    // DMARC with SPF aligned (no DKIM) passes.
    w.dns.txt("spf-aligned.test", SPF_LOCAL);
    w.dns
        .txt("_dmarc.spf-aligned.test", "v=DMARC1; p=reject; aspf=s");
    let (_, data) = w.reply("spf-aligned.test", "jane@spf-aligned.test", None, false);
    assert!(filed(&data), "{data}");
}

/// The attack of issue 12: someone who saw a notification writes as the patient. The
/// patient's domain publishes SPF and DMARC p=reject; the forger's server is not allowed to
/// send for it. Held, nobody notified, staff see the count; release files it, reject drops it.
#[test]
fn a_forged_patient_is_held_and_staff_decide() {
    let w = World::start("require-dmarc-pass");
    w.dns.txt("patient.test", SPF_ELSEWHERE);
    w.dns.txt("_dmarc.patient.test", "v=DMARC1; p=reject");
    let (thread, data) = w.reply("patient.test", "jane@patient.test", None, false);
    assert!(held(&data), "{data}");
    // Nobody was told about the hold: a notice would have been queued in the same commit as
    // the hold, before the 250. The outbox holds only Jane's notification of the new thread.
    let outbox = w.sb.run(&["outbox", "list"]).ok().json_lines();
    let of_thread: Vec<_> = outbox
        .iter()
        .filter(|n| n["thread_id"] == thread.as_str())
        .collect();
    assert_eq!(of_thread.len(), 1, "{outbox:?}");
    assert_eq!(of_thread[0]["kind"], "message", "{outbox:?}");

    let show = w.sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(show["held"], 1);
    let list = w.sb.run(&["thread", "list"]).ok().json_lines();
    let row = list
        .iter()
        .find(|t| t["thread_id"] == thread.as_str())
        .unwrap();
    assert_eq!(row["held"], 1);

    let h = held_for(&w.sb, &thread);
    let id = h["id"].as_str().unwrap().to_owned();
    let shown = w.sb.run(&["held", "show", &id]).ok().json();
    assert_eq!(shown["reason"], "auth-failed");
    assert!(
        shown["auth"].as_str().unwrap().contains("spf=fail"),
        "{shown}"
    );
    assert_eq!(shown["reply_text"], "Thank you, see you on Tuesday.");

    let released =
        w.sb.run(&["held", "release", &id, "--by", "dr.lee"])
            .ok()
            .json();
    assert_eq!(released["outcome"], "filed");
    let filed = messages(&w.sb, &thread);
    assert_eq!(filed.len(), 2);
    let auth = filed[1]["auth"].as_str().unwrap();
    assert!(
        auth.starts_with("released by dr.lee; held with: spf=fail"),
        "{auth}"
    );
    assert_eq!(
        w.sb.run(&["thread", "show", &thread]).ok().json()["held"],
        0
    );

    // Another forgery (another patient of the same kind) is rejected by staff: dropped,
    // never filed.
    w.dns.txt("patient2.test", SPF_ELSEWHERE);
    w.dns.txt("_dmarc.patient2.test", "v=DMARC1; p=reject");
    let (thread, data) = w.reply("patient2.test", "jane@patient2.test", None, false);
    assert!(held(&data));
    let id = held_for(&w.sb, &thread)["id"].as_str().unwrap().to_owned();
    w.sb.run(&["held", "reject", &id, "--by", "dr.lee"]).ok();
    assert_eq!(messages(&w.sb, &thread).len(), 1);
    let shown = w.sb.run(&["held", "show", &id]).ok().json();
    assert_eq!(shown["status"], "rejected");
}

/// A resolver that fails is a temporary failure (451), never a pass; once DNS answers, the
/// sender's retry is decided normally.
#[test]
fn dns_failures_ask_the_sender_to_retry() {
    let w = World::start("require-dmarc-pass");
    w.dns.txt("flaky.test", SPF_LOCAL);
    w.dns.servfail("flaky.test");
    w.dns.servfail("_dmarc.flaky.test");
    let (thread, notification) = w.thread_with("flaky.test");
    let (reply_to, raw) = client_reply(
        &notification,
        "Jane <jane@flaky.test>",
        "Is this thing on?",
        "flaky-1@mail.flaky.test",
    );
    let out = smtp_send(w.sb.smtp_port, "jane@flaky.test", &[&reply_to], &raw, None);
    assert_eq!(out["data"][0], 451, "{out}");

    // A server that does not answer at all: the check gives up and says 451 as well.
    w.dns.heal("flaky.test");
    w.dns.silent("_dmarc.flaky.test");
    // (The answer coming at all is the proof the check gives up: a hung lookup would leave
    // the client waiting for its own timeout, with no reply code.)
    let out = smtp_send(w.sb.smtp_port, "jane@flaky.test", &[&reply_to], &raw, None);
    assert_eq!(out["data"][0], 451, "{out}");
    assert!(held_list(&w.sb).is_empty(), "nothing held on a DNS failure");
    assert_eq!(messages(&w.sb, &thread).len(), 1);

    w.dns.heal("_dmarc.flaky.test");
    let out = smtp_send(w.sb.smtp_port, "jane@flaky.test", &[&reply_to], &raw, None);
    assert!(filed(&out["data"]), "{out}");
    assert_eq!(messages(&w.sb, &thread).len(), 2);
}

/// quarantine-on-fail files what nothing contradicts and holds what fails outright.
#[test]
fn quarantine_on_fail_holds_only_failures() {
    let w = World::start("quarantine-on-fail");
    w.dns.txt("spf-fail.test", SPF_ELSEWHERE);
    w.dns.txt("strict.test", SPF_ELSEWHERE);
    w.dns.txt("_dmarc.strict.test", "v=DMARC1; p=none");
    let (_, data) = w.reply("nothing.test", "jane@nothing.test", None, false);
    assert!(filed(&data), "{data}");
    let (_, data) = w.reply("spf-fail.test", "jane@spf-fail.test", None, false);
    assert!(held(&data), "{data}");
    let (_, data) = w.reply("strict.test", "jane@strict.test", None, false);
    assert!(held(&data), "{data}");
}

/// `auth.policy = off` files without looking anything up, and says so at start.
#[test]
fn policy_off_checks_nothing_and_warns() {
    let dns = TestDns::start();
    dns.txt("spf-fail.test", SPF_ELSEWHERE);
    let sb = Sandbox::with_keyring(&format!(
        "[auth]\npolicy = \"off\"\ndns_servers = [\"{}\"]\n",
        dns.addr
    ));
    let w = World {
        daemon: Some(Daemon::start(&sb, &[])),
        sb,
        dns,
    };
    let (thread, data) = w.reply("spf-fail.test", "jane@spf-fail.test", None, false);
    assert!(filed(&data), "{data}");
    assert_eq!(
        messages(&w.sb, &thread)[1]["auth"],
        "not checked (auth.policy = off)"
    );
    assert_eq!(
        w.dns.queries.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "no DNS at all"
    );
    let mut w = w;
    let log = w.daemon.take().unwrap().stop();
    assert!(log.stderr.contains("auth.policy = off"), "{}", log.stderr);
}

/// Mail from a configured relay is judged by the relay's own Authentication-Results, not by
/// SPF against the relay's address.
#[test]
fn a_trusted_relay_is_believed_and_no_one_else() {
    let dns = TestDns::start();
    // The patient's domain does not allow 127.0.0.1: checked directly, this would fail.
    dns.txt("relayed.test", SPF_ELSEWHERE);
    dns.txt("_dmarc.relayed.test", "v=DMARC1; p=reject");
    let sb = Sandbox::with_keyring(&format!(
        "[auth]\npolicy = \"require-dmarc-pass\"\ndns_servers = [\"{}\"]\n\
         trusted_relays = [\"127.0.0.0/8\"]\ntrusted_authserv_ids = [\"mx.practice.test\"]\n",
        dns.addr
    ));
    let w = World {
        daemon: Some(Daemon::start(&sb, &[])),
        sb,
        dns,
    };
    let send = |results: &str, n: u32| {
        let (thread, notification) = w.thread_with("relayed.test");
        let (reply_to, raw) = client_reply(
            &notification,
            "Jane <jane@relayed.test>",
            "Thanks!",
            &format!("relayed-{n}@mail.relayed.test"),
        );
        let mut with = results.as_bytes().to_vec();
        with.extend_from_slice(&raw);
        let out = smtp_send(
            w.sb.smtp_port,
            "jane@relayed.test",
            &[&reply_to],
            &with,
            None,
        );
        (thread, out["data"].clone())
    };
    let (_, data) = send(
        "Authentication-Results: mx.practice.test; spf=pass smtp.mailfrom=jane@relayed.test; dmarc=pass header.from=relayed.test\r\n",
        1,
    );
    assert!(filed(&data), "{data}");
    let (_, data) = send(
        "Authentication-Results: mx.attacker.test; dmarc=pass header.from=relayed.test\r\n",
        2,
    );
    assert!(held(&data), "{data}");
    let (_, data) = send("", 3);
    assert!(held(&data), "{data}");
    assert_eq!(
        w.dns.queries.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "the relay's mail is not checked again"
    );
}

/// Issue 23, path 1: a reply from the right person, DMARC passing for an aligned `From:`, but
/// with an envelope sender that is another address (VERP, SRS, a forwarder) was acknowledged
/// and then dropped. Identity is the authenticated `From:`: it is filed. Without a pass, such
/// a reply is held for staff — never dropped.
#[test]
fn a_rewritten_envelope_sender_does_not_stop_an_authenticated_reply() {
    let w = World::start("require-dmarc-pass");
    let dir = tempfile::tempdir().unwrap();
    let ed = Key::ed25519();
    w.dns
        .txt("s1._domainkey.vouched.test", &ed.record(dir.path()));
    w.dns.txt("_dmarc.vouched.test", "v=DMARC1; p=reject");
    let (thread, data) = w.reply(
        "vouched.test",
        "SRS0=HHH=TT=vouched.test=jane@forwarder.example",
        Some((&ed, "vouched.test")),
        false,
    );
    assert!(filed(&data), "{data}");
    assert_eq!(
        messages(&w.sb, &thread)[1]["body"],
        "Thank you, see you on Tuesday."
    );

    // SPF passes for the envelope's domain, which is not the From's: nothing proves who wrote
    // it. Held, with what authentication found.
    w.dns.txt("lists.example", SPF_LOCAL);
    let (thread, data) = w.reply("unvouched.test", "bounces+123@lists.example", None, false);
    assert!(held(&data), "{data}");
    assert_eq!(messages(&w.sb, &thread).len(), 1);
    assert_eq!(held_for(&w.sb, &thread)["reason"], "auth-failed");
}

/// Issue 23, path 7: a reply to a notification older than the reply address's lifetime got
/// `550 No such recipient`, and the practice never learnt that the patient answered. Its
/// signature verifies, so it is taken: from the authenticated participant it is held for
/// staff (releasable into the conversation) and the person gets one content-free notice
/// saying how to reach the practice; from anyone else it is refused after DATA.
#[test]
fn an_answer_to_an_old_notification_reaches_staff() {
    let w = World::start("require-dmarc-pass");
    let dir = tempfile::tempdir().unwrap();
    let ed = Key::ed25519();
    w.dns.txt("s1._domainkey.late.test", &ed.record(dir.path()));
    w.dns.txt("_dmarc.late.test", "v=DMARC1; p=reject");
    let (thread, notification) = w.thread_with("late.test");
    let (fresh, _) = client_reply(&notification, "jane@late.test", "x", "x@late.test");
    // The same participant's address as if the notification had gone out 31 days ago.
    let ring = sealpost::crypto::Keyring::load(&w.sb.keyring_path()).unwrap();
    let token = fresh
        .trim_start_matches("reply+")
        .split('@')
        .next()
        .unwrap()
        .to_owned();
    let now = sealpost::clock::Clock::system().now();
    let claims = sealpost::crypto::ReplyToken::verify(&token, &ring, now, 30)
        .unwrap()
        .claims;
    let old = sealpost::crypto::ReplyToken::issue(
        &ring,
        claims.thread_id,
        claims.participant_id,
        now - 31 * 86_400,
    )
    .address("reply.example.test");
    let reply = |id: &str| {
        let raw = format!(
            "From: Jane <jane@late.test>\r\nTo: {old}\r\nSubject: Re: Your results\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{id}@late.test>\r\n\r\nI only just saw this - is it still fine?\r\n"
        );
        raw.into_bytes()
    };

    // Signed by her domain: taken, held, and she is told.
    let signed = ed.sign("late.test", &reply("late-1"));
    let out = smtp_send(w.sb.smtp_port, "jane@late.test", &[&old], &signed, None);
    assert_eq!(out["rcpt"][&old][0], 250, "{out}");
    assert!(held(&out["data"]), "{out}");
    assert_eq!(messages(&w.sb, &thread).len(), 1);
    let h = held_for(&w.sb, &thread);
    assert_eq!(h["reason"], "token-expired");
    let rows = common::wait_outbox(&w.sb, Duration::from_secs(30), |rows| {
        rows.iter()
            .any(|r| r["kind"] == "notice-expired" && r["status"] == "sent")
    });
    let notice = rows.iter().find(|r| r["kind"] == "notice-expired").unwrap();
    assert_eq!(notice["recipient"], "jane@late.test");
    let spooled = std::fs::read(w.sb.data_dir().join("spool").join(format!(
        "{}.eml",
        notice["notification_id"].as_str().unwrap()
    )))
    .unwrap();
    let text = common::visible_text(&spooled);
    assert!(text.contains("too old to be answered by email"), "{text}");
    assert!(
        text.contains("contact Lee Family Practice directly"),
        "{text}"
    );
    assert!(
        !text.contains("is it still fine"),
        "a notice never quotes the mail"
    );

    // Staff can file it after all.
    let id = h["id"].as_str().unwrap();
    w.sb.run(&["held", "release", id, "--by", "dr.lee"]).ok();
    assert_eq!(
        messages(&w.sb, &thread)[1]["body"],
        "I only just saw this - is it still fine?"
    );

    // Not signed, from a domain that vouches for nothing: refused after DATA, so the sender's
    // own server tells them; nothing is kept and nobody is written to.
    let out = smtp_send(
        w.sb.smtp_port,
        "jane@late.test",
        &[&old],
        &reply("late-2"),
        None,
    );
    assert_eq!(out["rcpt"][&old][0], 250, "{out}");
    assert_eq!(out["data"][0], 550, "{out}");
    assert_eq!(held_list(&w.sb).len(), 1);
}
