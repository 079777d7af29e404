//! The time limits the README promises, pinned to the second. The daemon runs in-process on a
//! frozen clock that only the test moves, so "valid for 10 minutes" is checked at the last
//! second it holds and the first it does not — and a retry schedule is read off the queue
//! step by step (the next due time of each row, as the store records it), never guessed from
//! how long something took.
//!
//! A frozen clock is made *after* the command line has written (the command line reads the
//! system's clock): rows it wrote are then not in the daemon's future.

use crate::common;
use crate::web::{JANE, call, code_in, link_path, setup, sign_in};

use std::time::Duration;

use common::receiver::Receiver;
use common::{InProcess, Sandbox, free_port, wait_for};
use sealpost::clock::Clock;
use sealpost::store::Store;
use sealpost::store::queue::Queue;

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The daemon for `sb` on a clock frozen at the system's time now.
fn frozen(sb: &Sandbox) -> InProcess {
    InProcess::start_with_clock(sb, Clock::frozen())
}

/// `web.session_idle` (15 minutes) and `web.session_max` (12 hours), through the web view with
/// their defaults: a session used after exactly 15 idle minutes still works (and each use
/// starts the 15 minutes again); one more second and it has ended. However busy, a session
/// ends 12 hours after it began.
#[test]
fn a_session_ends_after_fifteen_idle_minutes_and_after_twelve_hours() {
    let (sb, thread) = setup("");
    let daemon = frozen(&sb);
    let port = sb.web_port;
    let page = |cookie: &str| call(port, "GET", &format!("/t/{thread}"), Some(cookie), &[]);
    let link = link_path(&sb);

    let cookie = sign_in(port, &link);
    for _ in 0..3 {
        daemon.advance(15 * MINUTE);
        let p = page(&cookie);
        assert_eq!(p.status, 200, "15 idle minutes are allowed: {}", p.body);
    }
    daemon.advance(15 * MINUTE + 1);
    let p = page(&cookie);
    assert_eq!(p.status, 401, "{}", p.body);
    assert!(p.body.contains("Please sign in again"), "{}", p.body);

    // Used every 14 minutes, a session still ends at 12 hours.
    let cookie = sign_in(port, &link);
    let mut age = 0;
    while age + 14 * MINUTE <= 12 * HOUR {
        daemon.advance(14 * MINUTE);
        age += 14 * MINUTE;
        assert_eq!(page(&cookie).status, 200, "at {age} s");
    }
    daemon.advance(12 * HOUR - age);
    assert_eq!(page(&cookie).status, 200, "at exactly 12 hours");
    daemon.advance(1);
    let p = page(&cookie);
    assert_eq!(p.status, 401, "{}", p.body);
    daemon.stop();
}

/// The code emails sent so far (spooled), oldest first by their outbox order.
fn code_emails(sb: &Sandbox) -> Vec<String> {
    let spool = sb.data_dir().join("spool");
    let mut found: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let raw = std::fs::read(e.path()).ok()?;
            let m = mail_parser::MessageParser::default().parse(&raw)?;
            let subject = m.subject()?;
            subject.starts_with("Your code for").then(|| {
                (
                    e.metadata().unwrap().modified().unwrap(),
                    m.body_text(0).unwrap().into_owned(),
                )
            })
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, text)| text).collect()
}

/// Asks for a code from `link` and returns it once its email is spooled (the `n`-th code).
fn ask_code(sb: &Sandbox, link: &str, n: usize) -> String {
    let port = sb.web_port;
    let ask = call(port, "GET", link, None, &[]);
    assert!(ask.body.contains("Send me a code"), "{}", ask.body);
    let r = call(
        port,
        "POST",
        &format!("{link}/number"),
        None,
        &[("csrf", &ask.csrf())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let texts = wait_for(Duration::from_secs(30), || {
        let texts = code_emails(sb);
        (texts.len() == n).then_some(texts)
    })
    .unwrap_or_else(|| panic!("code email {n} is sent: {:?}", code_emails(sb)));
    code_in(&texts[n - 1])
}

/// Passes `code` from `link`; the page that answers.
fn pass_code(sb: &Sandbox, link: &str, code: &str) -> crate::web::Page {
    let port = sb.web_port;
    let form = call(port, "GET", link, None, &[]);
    call(
        port,
        "POST",
        &format!("{link}/code"),
        None,
        &[("csrf", &form.csrf()), ("code", code)],
    )
}

/// A code is valid for 10 minutes: passed at 9:59 it opens the identity check; at 10:00 it is
/// gone, and the page says to ask for a new one (and counts no failed attempt: the person did
/// nothing wrong).
#[test]
fn a_code_is_valid_for_ten_minutes() {
    let (sb, _thread) = setup("");
    let daemon = frozen(&sb);
    let link = link_path(&sb);
    // A day later the link asks for a code (by email: the default provider).
    daemon.advance(25 * HOUR);

    let first = ask_code(&sb, &link, 1);
    daemon.advance(10 * MINUTE);
    let late = pass_code(&sb, &link, &first);
    assert_eq!(late.status, 401, "{}", late.body);
    assert!(late.body.contains("it has expired"), "{}", late.body);

    let second = ask_code(&sb, &link, 2);
    daemon.advance(10 * MINUTE - 1);
    let in_time = pass_code(&sb, &link, &second);
    assert_eq!(in_time.status, 200, "{}", in_time.body);
    assert!(
        in_time.body.contains("name=\"birth_date\""),
        "{}",
        in_time.body
    );
    // The expired code counted no failure: a wrong date now is the first of three.
    let wrong = call(
        sb.web_port,
        "POST",
        &link,
        None,
        &[("csrf", &in_time.csrf()), ("birth_date", "1984-07-03")],
    );
    assert!(wrong.body.contains("2 attempts left"), "{}", wrong.body);
    daemon.stop();
}

/// `policy.token_ttl_days` (30): a link opens until the last second of its 30th day and then
/// gets the one neutral page; a reply to its reply address is filed until then and afterwards
/// not (refused here, where nothing proves who wrote it; `tests/suite/auth.rs` holds one that
/// proves it).
#[test]
fn links_and_reply_addresses_last_thirty_days() {
    let sb = Sandbox::with_keyring("");
    sb.run(&["person", "add", JANE, "--birth-date", "1984-03-07"])
        .ok();
    sb.consent(JANE);
    let thread = sb.new_thread("convenience", "Your results", "All clear.");
    let daemon = frozen(&sb);
    // Both carry the time the notification's row was written (by the command line, on the
    // system's clock, a moment — under load, seconds — before the daemon's clock froze):
    // the 30 days count from there.
    let notification = common::notification_to(&sb, JANE);
    let link = link_path(&sb);
    let issued = issued_at(&sb, JANE);
    daemon.advance(issued + 30 * DAY - 1 - daemon.clock.now());
    let open = call(sb.web_port, "GET", &link, None, &[]);
    assert_eq!(open.status, 200, "{}", open.body);
    let (to, raw) = common::client_reply(&notification, JANE, "In time.", "r1@example.test");
    common::smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    let filed = common::messages(&sb, &thread);
    assert_eq!(filed.len(), 2, "filed on the last second: {filed:?}");

    daemon.advance(1);
    let closed = call(sb.web_port, "GET", &link, None, &[]);
    assert_eq!(closed.status, 404, "{}", closed.body);
    assert!(
        closed.body.contains("not valid any more"),
        "{}",
        closed.body
    );
    // Nothing here proves the writer is Jane (no DKIM for her domain): an expired reply
    // address is then refused, so her own server tells her.
    let (to, raw) = common::client_reply(&notification, JANE, "Too late.", "r2@example.test");
    let answer = common::smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    assert_eq!(answer["data"][0], 550, "{answer}");
    assert!(
        answer["data"][1].as_str().unwrap().contains("expired"),
        "{answer}"
    );
    assert_eq!(common::messages(&sb, &thread).len(), 2, "not filed");
    daemon.stop();
}

/// When the notification to `recipient` was written (its row's creation time), which its reply
/// token and its link carry.
fn issued_at(sb: &Sandbox, recipient: &str) -> i64 {
    let rows = sb.run(&["outbox", "list"]).ok().json_lines();
    let row = rows
        .iter()
        .find(|r| r["recipient"] == recipient)
        .expect("a notification to the recipient");
    sealpost::clock::parse_rfc3339(row["created_at"].as_str().unwrap()).unwrap()
}

/// `policy.notices_per_hour` (3) counts the notices of the last hour: with three sent, a fourth
/// 59 minutes 59 seconds after them is recorded as suppressed; one second later, when the
/// first three are an hour old, the next one goes out.
#[test]
fn the_notice_limit_counts_one_hour_back() {
    let sb = Sandbox::with_keyring("");
    sb.consent(JANE);
    let thread = sb.new_thread("convenience", "Your results", "All clear.");
    let daemon = frozen(&sb);
    let notification = common::notification_to(&sb, JANE);
    sb.run(&["thread", "close", &thread]).ok();
    // Every reply to a closed conversation is held, and its writer told (a notice).
    let reply = |n: usize| {
        let (to, raw) = common::client_reply(
            &notification,
            JANE,
            &format!("Question {n}"),
            &format!("q{n}@example.test"),
        );
        common::smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    };
    let notices = |status: &str| {
        sb.run(&["outbox", "list"])
            .ok()
            .json_lines()
            .into_iter()
            .filter(|r| r["kind"].as_str().unwrap().starts_with("notice-") && r["status"] == status)
            .count()
    };
    for n in 1..=3 {
        reply(n);
    }
    wait_for(Duration::from_secs(30), || {
        (notices("sent") == 3).then_some(())
    })
    .expect("three notices sent");
    daemon.advance(HOUR - 1);
    reply(4);
    assert_eq!(notices("suppressed"), 1, "the fourth within the hour");
    daemon.advance(1);
    reply(5);
    wait_for(Duration::from_secs(30), || {
        (notices("sent") == 4).then_some(())
    })
    .expect("the fifth goes out once the first three are an hour old");
    assert_eq!(notices("suppressed"), 1);
    daemon.stop();
}

/// Reads the next due time of `queue` until the row's failure is recorded (a due time after
/// `now`), or until nothing is left to try (`None`: given up).
fn next_due_after(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    queue: Queue,
    now: i64,
) -> Option<i64> {
    wait_for(Duration::from_secs(30), || {
        match rt.block_on(store.next_due(queue)).unwrap() {
            Some(due) if due > now => Some(Some(due)),
            Some(_) => None,
            None => Some(None),
        }
    })
    .expect("the failed attempt is recorded")
}

/// The attempts recorded on the first row a listing command prints. The store counts an
/// attempt when it settles it (in the statement that ends the claim), so once this reaches
/// n the row's next due time is its retry, not the end of the claim's lease; a peer's count
/// of requests runs ahead of that.
fn recorded(sb: &Sandbox, listing: &[&str]) -> usize {
    let rows = sb.run(listing).ok().json_lines();
    rows.first()
        .map_or(0, |r| r["attempts"].as_u64().unwrap() as usize)
}

/// Drives one always-failing row of `queue` through its whole schedule on the frozen clock:
/// after each failure, the delay to the next attempt (read off the queue) must pass `check`;
/// the clock is moved there and the attempt made (`attempts()` counts those the store has settled). Returns the
/// delays, until the row is given up.
fn follow_schedule(
    daemon: &InProcess,
    sb: &Sandbox,
    queue: Queue,
    attempts: impl Fn() -> usize,
    check: impl Fn(u32, i64) -> bool,
) -> Vec<i64> {
    let (rt, store) = daemon.store(sb);
    let mut delays = Vec::new();
    let mut failures = 1u32;
    loop {
        wait_for(Duration::from_secs(30), || {
            (attempts() == failures as usize).then_some(())
        })
        .unwrap_or_else(|| panic!("attempt {failures} is made"));
        let now = daemon.clock.now();
        let Some(due) = next_due_after(&rt, &store, queue, now) else {
            return delays;
        };
        let delay = due - now;
        assert!(
            check(failures, delay),
            "after failure {failures}: retried {delay} s later ({delays:?} before)"
        );
        delays.push(delay);
        daemon.advance(delay);
        failures += 1;
    }
}

/// Webhook deliveries are retried 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then every
/// 8 h, until 24 hours after the event; then marked failed.
#[test]
fn webhook_retries_follow_the_published_schedule_for_a_day() {
    let tmp = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(&tmp.path().join("rx"), free_port(), &["--status", "500"]);
    let sb = Sandbox::with_keyring("[webhooks]\nallow_private = [\"127.0.0.1\"]\n");
    let url = format!("http://127.0.0.1:{}/hooks", receiver.port);
    sb.run(&["webhook", "add", "--url", &url, "--events", "thread.closed"])
        .ok();
    let thread = sb.new_thread("secure", "Results", "In the portal.");
    let daemon = frozen(&sb);
    // The event is written by the daemon (the API), on its clock.
    let (_, write) = common::http::key(&sb, "write");
    let api = common::http::Api { port: sb.api_port };
    let r = api.call(
        "POST",
        &format!("/v1/threads/{thread}/close"),
        Some(&write),
        None,
    );
    assert!(r.status < 300, "{} {}", r.status, r.body);
    let published = [5, 30, 120, 600, 1800, 3600, 7200, 14_400, 28_800];
    let delays = follow_schedule(
        &daemon,
        &sb,
        Queue::WebhookDeliveries,
        || recorded(&sb, &["webhook", "deliveries"]),
        |failures, delay| {
            let i = (failures as usize - 1).min(published.len() - 1);
            delay == published[i]
        },
    );
    // 5+30+120+600+1800+3600+7200+14400+28800 = 56 555 s; one more 8-hour step fits in the
    // day (85 355 s), the next would not.
    assert_eq!(delays.len(), 10, "{delays:?}");
    let rows = sb.run(&["webhook", "deliveries"]).ok().json_lines();
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert_eq!(rows[0]["attempts"], 11, "{rows:?}");
    assert_eq!(
        receiver.received().len(),
        11,
        "every attempt reached the receiver"
    );
    daemon.stop();
}

/// A code's text message is retried 5 s, 15 s, 30 s, 1 min, then every 2 min while the code
/// is valid (10 minutes), and then given up: a code nobody can use any more is not sent.
#[test]
fn text_message_retries_stop_when_the_code_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let gateway = Receiver::start(&tmp.path().join("gw"), free_port(), &["--status", "500"]);
    let secret_file = tmp.path().join("sms-secret");
    std::fs::write(
        &secret_file,
        format!(
            "whsec_{}",
            data_encoding::BASE64.encode(b"a gateway secret of 32 bytes....")
        ),
    )
    .unwrap();
    let (sb, _thread) = setup(&format!(
        "[sms]\nprovider = \"webhook\"\nwebhook_url = \"http://127.0.0.1:{}/sms\"\n\
         webhook_secret_file = \"{}\"\n",
        gateway.port,
        secret_file.display()
    ));
    sb.run(&["person", "update", JANE, "--mobile", "+44 7700 900123"])
        .ok();
    let daemon = frozen(&sb);
    let link = link_path(&sb);
    daemon.advance(25 * HOUR);
    let port = sb.web_port;
    let ask = call(port, "GET", &link, None, &[]);
    let r = call(
        port,
        "POST",
        &format!("{link}/number"),
        None,
        &[("csrf", &ask.csrf()), ("mobile", "+44 7700 900123")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let published = [5, 15, 30, 60, 120];
    let delays = follow_schedule(
        &daemon,
        &sb,
        Queue::TextMessages,
        || recorded(&sb, &["sms", "list"]),
        |failures, delay| {
            let i = (failures as usize - 1).min(published.len() - 1);
            delay == published[i]
        },
    );
    // Attempts at 0, 5, 20, 50, 110, 230, 350, 470, 590 s; the next (710 s) is after the
    // code's 600 s.
    assert_eq!(delays, [5, 15, 30, 60, 120, 120, 120, 120], "{delays:?}");
    let rows = sb.run(&["sms", "list"]).ok().json_lines();
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert_eq!(rows[0]["attempts"], 9, "{rows:?}");
    assert_eq!(
        gateway.received().len(),
        9,
        "every attempt reached the gateway"
    );
    daemon.stop();
}

/// Notifications the relay defers are retried after 1, 2, 4, 8 … minutes
/// (`outbound.retry_base_secs` 60, doubling, at most 6 hours), each within a quarter either
/// way (jitter), for `outbound.max_attempts` (12) attempts; then marked failed.
#[test]
fn notification_retries_double_with_jitter_until_the_attempts_are_used() {
    let tmp = tempfile::tempdir().unwrap();
    let peer = common::SmtpPeer::start(tmp.path(), &["--tempfail-first", "1000"]);
    let sb = Sandbox::with_keyring(&format!(
        "[outbound]\ntransport = \"smtp\"\nsmtp_host = \"localhost\"\nsmtp_port = {}\n\
         smtp_tls = \"none\"\nfrom = \"Lee Family Practice <noreply@example.test>\"\n",
        peer.port
    ));
    sb.new_thread("secure", "Results", "In the portal.");
    let daemon = frozen(&sb);
    let delays = follow_schedule(
        &daemon,
        &sb,
        Queue::Notifications,
        || recorded(&sb, &["outbox", "list"]),
        |failures, delay| {
            let nominal = (60i64 << (failures - 1)).min(6 * HOUR);
            (nominal * 3 / 4..=nominal * 5 / 4).contains(&delay)
        },
    );
    assert_eq!(delays.len(), 11, "{delays:?}");
    let rows = sb.run(&["outbox", "list"]).ok().json_lines();
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert_eq!(rows[0]["attempts"], 12, "{rows:?}");
    daemon.stop();
}
