//! Webhooks against the real daemon and a real HTTP receiver (tests/peers/webhook_receiver.py):
//! Standard Webhooks signatures checked here with an HMAC of our own, a retry after a 500, a
//! delivery given up after the retry window, nothing lost across a kill -9, and HTTPS receivers
//! whose certificates are verified.

use crate::common;

use std::time::Duration;

use common::http::{Api, key};
use common::receiver::{Receiver, verify};
use common::{Daemon, Sandbox, free_port, wait_for};
use serde_json::Value;

fn add_webhook(sb: &Sandbox, url: &str, events: &str) -> (String, String) {
    let out = sb
        .run(&["webhook", "add", "--url", url, "--events", events])
        .ok()
        .json();
    (
        out["webhook_id"].as_str().unwrap().to_owned(),
        out["secret"].as_str().unwrap().to_owned(),
    )
}

fn deliveries(sb: &Sandbox) -> Vec<Value> {
    sb.run(&["webhook", "deliveries"]).ok().json_lines()
}

/// The test's receivers run on this machine: loopback must be listed to be reached.
const LOCAL_RECEIVERS: &str = "[webhooks]\nallow_private = [\"127.0.0.1\"]\n";

#[test]
fn signed_deliveries_retried_after_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&tmp.path().join("rx"), free_port(), &["--fail-first", "1"]);
    let sb = Sandbox::with_keyring(LOCAL_RECEIVERS);

    // What a subscription may name.
    let r = sb.run(&[
        "webhook",
        "add",
        "--url",
        "http://portal.example.test/hooks",
        "--events",
        "*",
    ]);
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("https"), "{}", r.stderr);
    let r = sb.run(&[
        "webhook",
        "add",
        "--url",
        "https://portal.example.test/hooks",
        "--events",
        "message.read",
    ]);
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("message.filed"), "{}", r.stderr);

    let url = format!("http://127.0.0.1:{}/hooks/sealpost", receiver.port);
    let (webhook, secret) = add_webhook(
        &sb,
        &url,
        "thread.created,message.filed,notification.status,thread.closed,participant.added",
    );
    assert!(secret.starts_with("whsec_"));
    let listed = sb.run(&["webhook", "list"]).ok().json();
    assert_eq!(listed["webhook_id"], webhook.as_str());
    assert!(!listed.to_string().contains(&secret[6..]), "never listed");

    let daemon = Daemon::start(&sb, &[]);
    let thread = sb.new_thread("secure", "Biopsy results", "The biopsy came back benign.\n");
    sb.run(&[
        "thread",
        "add-participant",
        &thread,
        "--address",
        "Sam <sam@example.test>",
        "--shared",
    ])
    .ok();
    sb.run(&["thread", "close", &thread]).ok();

    // thread.created, message.filed, participant.added, thread.closed and one
    // notification.status (sent) for Jane: five deliveries, the first one answered 500 once.
    let got = wait_for(Duration::from_secs(30), || {
        let d = deliveries(&sb);
        (d.len() == 5 && d.iter().all(|d| d["status"] == "delivered")).then_some(d)
    })
    .unwrap_or_else(|| panic!("not all delivered: {:#?}", deliveries(&sb)));
    let requests = receiver.received();
    assert_eq!(
        requests.len(),
        6,
        "five deliveries and one retry: {requests:#?}"
    );
    assert_eq!(requests[0]["answered"], 500);
    let retried = requests[0]["headers"]["webhook-id"].as_str().unwrap();
    let again: Vec<&Value> = requests
        .iter()
        .filter(|r| r["headers"]["webhook-id"] == retried)
        .collect();
    assert_eq!(again.len(), 2, "the failed delivery was sent again");
    assert_eq!(again[0]["body"], again[1]["body"], "with the same body");
    assert_eq!(
        got.iter()
            .find(|d| d["delivery_id"] == retried)
            .expect("listed")["attempts"],
        2
    );

    let mut types = Vec::new();
    for request in &requests {
        assert_eq!(request["path"], "/hooks/sealpost");
        let body = verify(&secret, request);
        assert_eq!(body["data"]["thread_id"], thread.as_str(), "{body}");
        // Ids and statuses, never content: not the subject, not the body, not a name.
        let text = body.to_string();
        for secret_word in ["Biopsy", "benign", "Sam", "jane@"] {
            assert!(!text.contains(secret_word), "{secret_word} in {text}");
        }
        types.push(body["type"].as_str().unwrap().to_owned());
    }
    for t in [
        "thread.created",
        "message.filed",
        "participant.added",
        "thread.closed",
        "notification.status",
    ] {
        assert!(types.iter().any(|x| x == t), "{t} missing from {types:?}");
    }
    let status = requests
        .iter()
        .map(|r| verify(&secret, r))
        .find(|b| b["type"] == "notification.status")
        .unwrap();
    assert_eq!(status["data"]["status"], "sent");

    // The same through the API: admin keys only.
    let (_, write) = key(&sb, "write");
    let (_, admin) = key(&sb, "admin");
    let api = Api { port: sb.api_port };
    assert_eq!(
        api.call("GET", "/v1/webhooks", Some(&write), None).status,
        403
    );
    let r = api.call("GET", "/v1/webhooks", Some(&admin), None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body[0]["webhook_id"], webhook.as_str());
    let r = api.call(
        "GET",
        &format!("/v1/webhooks/{webhook}/deliveries?status=delivered&limit=2"),
        Some(&admin),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let next = r.body["next_before"].as_str().unwrap().to_owned();
    let r = api.call(
        "GET",
        &format!("/v1/webhooks/{webhook}/deliveries?before={next}"),
        Some(&admin),
        None,
    );
    assert_eq!(r.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["next_before"], Value::Null);

    // Made through the API, removed through the API: nothing more is queued for it.
    let r = api.call(
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(&format!(
            r#"{{"url":"http://127.0.0.1:{}/second","events":["thread.reopened"]}}"#,
            receiver.port
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let second = r.body["webhook_id"].as_str().unwrap().to_owned();
    let r = api.call(
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(r#"{"url":"http://portal.example.test/x","events":["*"]}"#),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.body["field"], "url");
    assert_eq!(
        api.call(
            "DELETE",
            &format!("/v1/webhooks/{second}"),
            Some(&admin),
            None
        )
        .status,
        204
    );
    // A subscription that stays, to the same event: its delivery is queued in the same commit
    // as the removed one's would be, and its arrival shows the event went out.
    let r = api.call(
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(&format!(
            r#"{{"url":"http://127.0.0.1:{}/third","events":["thread.reopened"]}}"#,
            receiver.port
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    sb.run(&["thread", "reopen", &thread]).ok();
    wait_for(Duration::from_secs(20), || {
        receiver
            .received()
            .iter()
            .any(|r| r["path"] == "/third")
            .then_some(())
    })
    .expect("the remaining subscription hears of the reopening");
    assert!(
        receiver.received().iter().all(|r| r["path"] != "/second"),
        "a removed subscription gets nothing"
    );
    let listed = api.call(
        "GET",
        &format!("/v1/webhooks/{second}/deliveries"),
        Some(&admin),
        None,
    );
    // Removed: unknown (404), or known with nothing delivered.
    assert!(
        listed.status == 404 || listed.body["items"] == serde_json::json!([]),
        "{} {}",
        listed.status,
        listed.body
    );
    daemon.stop();
}

#[test]
fn a_delivery_is_given_up_after_the_retry_window() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&tmp.path().join("rx"), free_port(), &["--status", "503"]);
    let sb = Sandbox::with_keyring(&format!("{LOCAL_RECEIVERS}retry_for = \"8s\"\n"));
    add_webhook(
        &sb,
        &format!("http://127.0.0.1:{}/h", receiver.port),
        "thread.created",
    );
    let daemon = Daemon::start(&sb, &[]);
    sb.new_thread("secure", "Hello", "Hello\n");
    // Tried at once and 5 s later; the next try (30 s on) would be past the 8 s window.
    let failed = wait_for(Duration::from_secs(30), || {
        let d = deliveries(&sb);
        (d.len() == 1 && d[0]["status"] == "failed").then(|| d[0].clone())
    })
    .unwrap_or_else(|| panic!("not given up: {:#?}", deliveries(&sb)));
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_eq!(failed["last_status"], 503);
    assert_eq!(receiver.received().len(), 2);
    let log = daemon.stop();
    assert!(
        log.stderr.contains("webhook delivery failed for good"),
        "{}",
        log.stderr
    );
}

#[test]
fn pending_deliveries_survive_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let sb = Sandbox::with_keyring(LOCAL_RECEIVERS);
    let (_, secret) = add_webhook(
        &sb,
        &format!("http://127.0.0.1:{port}/h"),
        "thread.created,message.filed",
    );
    // Nobody listens yet: every attempt fails to connect.
    let daemon = Daemon::start(&sb, &[]);
    let threads: Vec<String> = (0..3)
        .map(|i| sb.new_thread("secure", &format!("Thread {i}"), "Hello\n"))
        .collect();
    wait_for(Duration::from_secs(20), || {
        let d = deliveries(&sb);
        (d.len() == 6 && d.iter().all(|d| d["attempts"].as_i64() >= Some(1))).then_some(())
    })
    .unwrap_or_else(|| panic!("not attempted: {:#?}", deliveries(&sb)));
    assert!(
        deliveries(&sb)
            .iter()
            .all(|d| d["status"] == "pending" && d["last_error"] == "connect"),
        "{:#?}",
        deliveries(&sb)
    );
    daemon.kill();

    let receiver = Receiver::start(&tmp.path().join("rx"), port, &[]);
    let daemon = Daemon::start(&sb, &[]);
    wait_for(Duration::from_secs(60), || {
        deliveries(&sb)
            .iter()
            .all(|d| d["status"] == "delivered")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("not delivered after restart: {:#?}", deliveries(&sb)));
    let requests = receiver.received();
    let mut ids: Vec<&str> = requests
        .iter()
        .map(|r| r["headers"]["webhook-id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every delivery arrived: {requests:#?}");
    for t in &threads {
        let for_thread = requests
            .iter()
            .map(|r| verify(&secret, r))
            .filter(|b| b["data"]["thread_id"] == t.as_str())
            .count();
        assert!(for_thread >= 2, "thread {t}");
    }
    daemon.stop();
}

#[test]
fn https_receivers_are_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let trusted_dir = tmp.path().join("trusted");
    let untrusted_dir = tmp.path().join("untrusted");
    std::fs::create_dir_all(&trusted_dir).unwrap();
    std::fs::create_dir_all(&untrusted_dir).unwrap();
    let (cert, key) = common::self_signed_cert(&trusted_dir);
    let (other_cert, other_key) = common::self_signed_cert(&untrusted_dir);
    let trusted = Receiver::start(
        &trusted_dir.join("rx"),
        free_port(),
        &["--tls", cert.to_str().unwrap(), key.to_str().unwrap()],
    );
    let untrusted = Receiver::start(
        &untrusted_dir.join("rx"),
        free_port(),
        &[
            "--tls",
            other_cert.to_str().unwrap(),
            other_key.to_str().unwrap(),
        ],
    );
    let sb = Sandbox::with_keyring(&format!(
        "{LOCAL_RECEIVERS}ca_file = \"{}\"\n",
        cert.display()
    ));
    let (good, secret) = add_webhook(
        &sb,
        &format!("https://localhost:{}/h", trusted.port),
        "thread.created",
    );
    let (bad, _) = add_webhook(
        &sb,
        &format!("https://localhost:{}/h", untrusted.port),
        "thread.created",
    );
    let daemon = Daemon::start(&sb, &[]);
    sb.new_thread("secure", "Hello", "Hello\n");
    let d = wait_for(Duration::from_secs(20), || {
        let d = deliveries(&sb);
        let done = d.len() == 2 && d.iter().all(|d| d["attempts"].as_i64() >= Some(1));
        done.then_some(d)
    })
    .unwrap_or_else(|| panic!("not attempted: {:#?}", deliveries(&sb)));
    let of = |id: &str| d.iter().find(|x| x["webhook_id"] == id).unwrap().clone();
    assert_eq!(of(&good)["status"], "delivered", "{d:#?}");
    let refused = of(&bad);
    assert_eq!(refused["status"], "pending");
    assert!(
        refused["last_error"] == "tls",
        "the failure's class, not the peer's words: {refused}"
    );
    assert!(untrusted.received().is_empty());
    verify(&secret, &trusted.received()[0]);
    daemon.stop();
}

/// A name of this machine that resolves to a loopback address (from /etc/hosts), other than
/// `localhost` (which the subscription check knows by name).
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            ip.is_loopback()
                .then(|| words.find(|w| *w != "localhost" && !w.contains("localhost")))?
        })
        .next()
        .map(str::to_owned)
        .expect("this test needs a name other than localhost for a loopback address in /etc/hosts")
}

/// Issue 24, finding 4: webhook URLs could point at link-local (169.254.169.254), private and
/// loopback addresses (the API itself), and failed deliveries reported connection,
/// certificate and DNS details — enough to map internal hosts with an admin key. Only public
/// addresses by default, checked when connecting (a name that resolves inside reaches
/// nothing), and failures recorded as a class.
#[test]
fn webhooks_reach_only_public_addresses_unless_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&tmp.path().join("rx"), free_port(), &[]);
    let sb = Sandbox::with_keyring("");
    for url in [
        format!("https://127.0.0.1:{}/h", receiver.port),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1/h".to_owned(),
        format!("http://localhost:{}/h", sb.api_port),
    ] {
        let r = sb.run(&["webhook", "add", "--url", &url, "--events", "*"]);
        assert_ne!(r.status, 0, "{url}");
        assert!(
            r.stderr.contains("allow_private") || r.stderr.contains("https"),
            "{url}: {}",
            r.stderr
        );
    }
    // Through the API with an admin key: the same.
    let (_, admin) = common::http::key(&sb, "admin");
    // A name that resolves to this machine is accepted as a name…
    let name = loopback_name();
    let (webhook, _) = add_webhook(
        &sb,
        &format!("https://{name}:{}/h", receiver.port),
        "thread.created",
    );
    let daemon = Daemon::start(&sb, &[]);
    let api = common::http::Api { port: sb.api_port };
    let r = api.call(
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(&format!(
            r#"{{"url":"https://127.0.0.1:{}/x","events":["*"]}}"#,
            sb.api_port
        )),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.problem_type(), "urn:sealpost:problem:invalid-field");
    // …and reaches nothing when it is delivered to.
    sb.new_thread("secure", "Hello", "Hello\n");
    let d = wait_for(Duration::from_secs(20), || {
        let d = deliveries(&sb);
        d.iter()
            .any(|d| d["webhook_id"] == webhook.as_str() && d["attempts"].as_i64() >= Some(1))
            .then_some(d)
    })
    .expect("an attempt");
    let attempt = d
        .iter()
        .find(|d| d["webhook_id"] == webhook.as_str())
        .unwrap();
    assert_eq!(attempt["last_error"], "refused-address", "{attempt}");
    assert!(receiver.received().is_empty());
    daemon.stop();
}
