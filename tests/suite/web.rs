//! The secure web view over real HTTP (curl) against the real daemon: the link in a spooled
//! secure notification, the identity check, sessions and their cookies, forms without their
//! anti-forgery token, reading and replying, lockout and unlock, rate limits, and that nothing
//! with content is served without a session.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{Daemon, Sandbox, visible_text, wait_outbox};

pub(crate) const JANE: &str = "jane@example.test";

/// One answer: status, headers (lower-case), body.
pub(crate) struct Page {
    pub status: u16,
    pub headers: String,
    pub body: String,
}

impl Page {
    /// The value of the form's anti-forgery field.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The value of a hidden field of the page's form.
    pub fn field(&self, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let at = self
            .body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} field in {}", self.body));
        let rest = &self.body[at + needle.len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// A header's value (the name in lower case); values of `set-cookie` keep their case,
    /// others are lower-cased.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            (n.trim().eq_ignore_ascii_case(name)).then(|| {
                let v = v.trim();
                if name == "set-cookie" || name == "location" {
                    v.to_owned()
                } else {
                    v.to_ascii_lowercase()
                }
            })
        })
    }
}

thread_local! {
    /// This test's browser's sign-in cookie (each test runs on a thread of its own, like a
    /// browser of its own): kept from the answer that set it, sent back with every request.
    static SIGNIN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Forgets the sign-in cookie, as another browser would not have it.
fn new_browser() {
    SIGNIN.with(|s| s.borrow_mut().take());
}

/// A request to the web view: `form` is url-encoded pairs, `cookie` the session's value.
pub(crate) fn call(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: &[(&str, &str)],
) -> Page {
    let mut c = Command::new("curl");
    c.args(["-s", "-i", "-X", method, "--max-time", "20"]);
    let mut cookies = Vec::new();
    if let Some(v) = cookie {
        cookies.push(format!("sealpost_session={v}"));
    }
    if let Some(v) = SIGNIN.with(|s| s.borrow().clone()) {
        cookies.push(format!("sealpost_signin={v}"));
    }
    if !cookies.is_empty() {
        c.args(["-H", &format!("Cookie: {}", cookies.join("; "))]);
    }
    for (k, v) in form {
        c.args(["--data-urlencode", &format!("{k}={v}")]);
    }
    let out = c
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .expect("curl is required");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    for line in head.lines() {
        if let Some(v) = line
            .split_once(':')
            .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
            .and_then(|(_, v)| v.trim().strip_prefix("sealpost_signin="))
        {
            let value = v.split(';').next().unwrap_or("").to_owned();
            SIGNIN.with(|s| *s.borrow_mut() = Some(value));
        }
    }
    Page {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}")),
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

/// The `/m/<token>` path of the link in Jane's latest secure notification.
pub(crate) fn link_path(sb: &Sandbox) -> String {
    common::link_path_to(sb, JANE)
}

/// A sandbox where Jane is in the directory with her date of birth, and a secure thread from
/// Dr Lee to her.
pub(crate) fn setup(extra: &str) -> (Sandbox, String) {
    let sb = Sandbox::with_keyring(extra);
    sb.run(&[
        "person",
        "add",
        JANE,
        "--name",
        "Jane Doe",
        "--birth-date",
        "1984-03-07",
    ])
    .ok();
    let thread = sb.new_thread(
        "secure",
        "Biopsy results",
        "The biopsy came back benign.\n\nNo further treatment is needed.",
    );
    (sb, thread)
}

/// Signs in with the right date of birth; returns the session cookie's value.
pub(crate) fn sign_in(port: u16, link: &str) -> String {
    let form = call(port, "GET", link, None, &[]);
    assert_eq!(form.status, 200, "{}", form.body);
    let r = call(
        port,
        "POST",
        link,
        None,
        &[("csrf", &form.csrf()), ("birth_date", "1984-03-07")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie
        .strip_prefix("sealpost_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn sign_in_read_and_reply() {
    let (sb, thread) = setup("");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let link = link_path(&sb);

    // Links that do not open all get the same neutral page.
    let bogus = call(port, "GET", "/m/nonsense", None, &[]);
    let mut tampered = link.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    let tampered = call(port, "GET", &tampered, None, &[]);
    for p in [&bogus, &tampered] {
        assert_eq!(p.status, 404);
        assert!(
            p.body.contains("This link is not valid any more"),
            "{}",
            p.body
        );
        assert!(p.body.contains("Lee Family Practice"));
    }
    assert_eq!(
        bogus.body, tampered.body,
        "the same page, whatever the cause"
    );

    // The form: every protective header, and nothing of the conversation.
    let form = call(port, "GET", &link, None, &[]);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("Your date of birth"), "{}", form.body);
    assert!(form.body.contains("<html lang=\"en\">"));
    assert!(form.body.contains("name=\"viewport\""));
    for (name, value) in [
        ("x-frame-options", "deny"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(form.header(name).as_deref(), Some(value), "{name}");
    }
    let csp = form.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    for secret in ["Biopsy", "benign"] {
        assert!(!form.body.contains(secret));
    }

    // Nothing with content without a session.
    for path in [format!("/t/{thread}"), "/inbox".to_owned()] {
        let p = call(port, "GET", &path, None, &[]);
        assert_eq!(p.status, 401, "{path}");
        assert!(!p.body.contains("Biopsy"), "{path}");
    }

    // A form without its token is refused; wrong dates are counted.
    let r = call(port, "POST", &link, None, &[("birth_date", "1984-03-07")]);
    assert_eq!(r.status, 403);
    let csrf = form.csrf();
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("birth_date", "1984-07-03")],
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("2 attempts left"), "{}", r.body);
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("birth_date", "1985-03-07")],
    );
    assert!(r.body.contains("1 attempt left"), "{}", r.body);

    // The right one (as typed by hand) opens a session.
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("birth_date", "07.03.1984")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some(format!("/t/{thread}")));
    let set = r.header("set-cookie").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(set.contains(flag), "{flag} missing from {set}");
    }
    let cookie = set
        .strip_prefix("sealpost_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // Reading: the message, with its paragraphs, marked new the first time.
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Biopsy results"));
    assert!(page.body.contains("The biopsy came back benign."));
    assert!(page.body.contains("No further treatment is needed."));
    assert!(page.body.contains("class=\"new\""), "unread the first time");
    assert_eq!(page.header("cache-control").as_deref(), Some("no-store"));
    let again = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(
        !again.body.contains("class=\"new\""),
        "read the second time"
    );
    // Staff see who read it, and when.
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(
        shown["messages"][0]["read_by"][0]["address"], JANE,
        "{shown}"
    );
    assert!(shown["messages"][0]["read_by"][0]["read_at"].is_string());
    let inbox = call(port, "GET", "/inbox", Some(&cookie), &[]);
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("Biopsy results"));

    // Replying: refused without the form's token, filed with it, and Dr Lee is notified.
    let reply = format!("/t/{thread}/reply");
    let r = call(
        port,
        "POST",
        &reply,
        Some(&cookie),
        &[("body", "Thank you!")],
    );
    assert_eq!(r.status, 403);
    let r = call(
        port,
        "POST",
        &reply,
        Some(&cookie),
        &[
            ("csrf", &page.csrf()),
            ("answers", &page.field("answers")),
            ("body", "Thank you, that is a relief.\r\nSee you in March."),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    let last = shown["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["via"], "web");
    assert_eq!(last["from"], JANE);
    assert_eq!(
        last["body"],
        "Thank you, that is a relief.\nSee you in March."
    );
    wait_outbox(&sb, Duration::from_secs(20), |rows| {
        rows.iter()
            .any(|r| r["recipient"] == "lee@clinic.example.test" && r["kind"] == "message")
    });

    // A follow-up, then a new message from Dr Lee: the reply and the follow-up are nested
    // under the message they answer; Dr Lee's starts an exchange of its own.
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(page.body.contains("Send a follow-up"), "{}", page.body);
    call(
        port,
        "POST",
        &reply,
        Some(&cookie),
        &[
            ("csrf", &page.csrf()),
            ("answers", &page.field("answers")),
            ("body", "One more question: may I exercise?"),
        ],
    );
    sb.post(
        &thread,
        "lee@clinic.example.test",
        "Of course, gently at first.",
    )
    .ok();
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    let answers_at = page
        .body
        .find("<ol class=\"answers\"")
        .expect("nested answers");
    let answers_end = answers_at + page.body[answers_at..].find("</ol>").unwrap();
    let nested = &page.body[answers_at..answers_end];
    assert!(page.body[..answers_at].contains("The biopsy came back benign."));
    assert!(nested.contains("See you in March.") && nested.contains("may I exercise?"));
    assert!(page.body[answers_end..].contains("Of course, gently at first."));
    assert_eq!(page.body.matches("<ol class=\"answers\"").count(), 1);

    // Signing out ends the session here, not only in the browser.
    let r = call(
        port,
        "POST",
        "/signout",
        Some(&cookie),
        &[("csrf", &page.csrf())],
    );
    assert_eq!(r.status, 200);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(
        call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]).status,
        401
    );

    // No content and no date of birth in the logs; the session store holds only hashes.
    let log = daemon.stop();
    for secret in ["benign", "relief", "1984", "Biopsy"] {
        assert!(!log.stderr.contains(secret), "{secret} in the log");
    }
    let db = common::stored_bytes(&sb);
    assert!(
        !db.windows(cookie.len()).any(|w| w == cookie.as_bytes()),
        "the cookie's value is not stored"
    );
}

/// Issue 24, finding 2: three wrong dates locked the patient out for good, and only staff
/// could lift it. A lock is now temporary and grows (15 minutes, an hour, a day), staff are
/// told when it comes back, and can still lift it at once.
#[test]
fn locks_are_temporary_grow_and_staff_are_told_when_they_come_back() {
    let (sb, _thread) = setup("");
    let daemon = common::InProcess::start(&sb);
    let port = sb.web_port;
    let link = link_path(&sb);
    let csrf = call(port, "GET", &link, None, &[]).csrf();
    let wrong = || {
        call(
            port,
            "POST",
            &link,
            None,
            &[("csrf", &csrf), ("birth_date", "2001-01-01")],
        )
    };
    let right = || {
        call(
            port,
            "POST",
            &link,
            None,
            &[("csrf", &csrf), ("birth_date", "1984-03-07")],
        )
    };
    for _ in 0..3 {
        wrong();
    }
    let locked = call(port, "GET", &link, None, &[]);
    assert_eq!(locked.status, 403);
    assert!(locked.body.contains("Access is locked"), "{}", locked.body);
    assert!(
        locked.body.contains("in about 15 minutes"),
        "{}",
        locked.body
    );
    // Even the right date does not open it now.
    assert_eq!(right().status, 403);
    assert_eq!(
        sb.run(&["person", "show", JANE]).ok().json()["status"],
        "locked"
    );

    // Fifteen minutes later it has run out; the first lock told nobody.
    daemon.advance(15 * 60 + 1);
    assert_eq!(call(port, "GET", &link, None, &[]).status, 200);
    // Locked again: for an hour now, and the conversation's staff are told, without content.
    for _ in 0..3 {
        wrong();
    }
    let locked = call(port, "GET", &link, None, &[]);
    assert!(locked.body.contains("in about an hour"), "{}", locked.body);
    daemon.advance(30 * 60);
    assert_eq!(right().status, 403, "still locked half an hour later");
    let rows = wait_outbox(&sb, Duration::from_secs(20), |rows| {
        rows.iter().any(|r| {
            r["recipient"] == "lee@clinic.example.test"
                && r["kind"] == "notice-locked"
                && r["status"] == "sent"
        })
    });
    assert_eq!(
        rows.iter().filter(|r| r["kind"] == "notice-locked").count(),
        1,
        "told once, when the lock came back"
    );
    let notice = rows.iter().find(|r| r["kind"] == "notice-locked").unwrap();
    let raw = std::fs::read(sb.data_dir().join("spool").join(format!(
        "{}.eml",
        notice["notification_id"].as_str().unwrap()
    )))
    .unwrap();
    let text = visible_text(&raw);
    assert!(text.contains("locked out"), "{text}");
    assert!(
        !text.contains("benign") && !text.contains("Biopsy"),
        "{text}"
    );

    // Staff lift it at once.
    sb.run(&["person", "unlock", JANE, "--by", "reception"])
        .ok();
    assert_eq!(
        sb.run(&["person", "show", JANE]).ok().json()["status"],
        "registered"
    );
    sign_in(port, &link);
    let after = sb.run(&["person", "show", JANE]).ok().json();
    assert_eq!(
        after["status"], "registered",
        "signing in keeps the person unlocked"
    );
    daemon.stop();
}

/// Issue 24, finding 1: ten sign-in POSTs at once (nine wrong, one right, each from another
/// address) had four wrong answers checked against a limit of three, gave the right one a
/// session, left the person locked — and the session kept working. Attempts are reserved
/// before they are compared, and a lock ends every session. Repeated: the outcome must hold
/// whatever the timing.
#[test]
fn a_burst_of_sign_ins_compares_no_more_than_the_limit() {
    let port = common::free_port();
    let (sb, _thread) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nattempts_per_minute = 1000\n"
    ));
    let (_, key) = common::http::key(&sb, "read");
    let api = common::http::Api { port: sb.api_port };
    let daemon = Daemon::start(&sb, &[]);
    let link = link_path(&sb);
    // The failures in a row each failed comparison left (the audit trail records each as
    // `web.check-failed` with the count), after event `from`.
    let failed_after = |from: i64| -> (Vec<i64>, i64) {
        let events = api
            .call("GET", "/v1/events?after=0&limit=500", Some(&key), None)
            .body;
        let events = events.as_array().unwrap();
        let last = events
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .max()
            .unwrap_or(from);
        let counts = events
            .iter()
            .filter(|e| e["id"].as_i64().unwrap() > from && e["kind"] == "web.check-failed")
            .map(|e| e["detail"]["failures"].as_i64().unwrap())
            .collect();
        (counts, last)
    };
    let mut seen = 0;
    for round in 0..3 {
        sb.run(&["person", "unlock", JANE, "--by", "test"]).ok();
        let csrf = call(port, "GET", &link, None, &[]).csrf();
        let signin = SIGNIN.with(|s| s.borrow().clone()).unwrap();
        let answers: Vec<Page> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..10)
                .map(|i| {
                    let (csrf, link, signin) = (csrf.clone(), link.clone(), signin.clone());
                    scope.spawn(move || {
                        SIGNIN.with(|s| *s.borrow_mut() = Some(signin));
                        let date = if i == 9 { "1984-03-07" } else { "2001-01-01" };
                        call(
                            port,
                            "POST",
                            &link,
                            None,
                            &[("csrf", &csrf), ("birth_date", date)],
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (in_a_row, last) = failed_after(seen);
        seen = last;
        let sessions: Vec<String> = answers
            .iter()
            .filter(|a| a.status == 303)
            .filter_map(|a| a.header("set-cookie"))
            .map(|c| {
                c.strip_prefix("sealpost_session=")
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        let person = sb.run(&["person", "show", JANE]).ok().json();
        // Never more wrong answers in a row were compared than the limit (a right one in
        // between starts the count over).
        assert!(
            in_a_row.iter().all(|n| *n <= 3),
            "round {round}: failures in a row {in_a_row:?}"
        );
        assert!(
            !in_a_row.is_empty(),
            "round {round}: some wrong answers were compared"
        );
        assert!(sessions.len() <= 1, "round {round}");
        if person["status"] == "locked" {
            // Whatever session the right answer got, the lock ended it.
            for s in &sessions {
                let page = call(port, "GET", "/inbox", Some(s), &[]);
                assert_eq!(
                    page.status, 401,
                    "round {round}: a session survived the lock"
                );
            }
        } else {
            assert_eq!(sessions.len(), 1, "round {round}: the right answer got in");
        }
    }
    daemon.stop();
}

/// Issue 24, finding 2 (codes): wrong codes posted straight to `/m/<token>/code` when no code
/// was ever asked for locked the person out. A code is checked, and counted, only while one
/// asked from that link is live.
#[test]
fn guessing_a_code_nobody_asked_for_locks_nobody_out() {
    let (sb, _thread) = setup("");
    let daemon = common::InProcess::start(&sb);
    let port = sb.web_port;
    let link = link_path(&sb);
    // A day later the link needs a code first.
    daemon.advance(25 * 3600);
    let page = call(port, "GET", &link, None, &[]);
    let csrf = page.csrf();
    let code_path = format!("{link}/code");
    for _ in 0..5 {
        let r = call(
            port,
            "POST",
            &code_path,
            None,
            &[("csrf", &csrf), ("code", "12345")],
        );
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("no code waiting"), "{}", r.body);
    }
    assert_eq!(
        sb.run(&["person", "show", JANE]).ok().json()["status"],
        "registered"
    );
    daemon.stop();
}

/// Issue 24, finding 7: a cross-site sign-in POST was accepted (the form's token depended only
/// on the link, which the attacker holds for their own account). The sign-in forms are bound
/// to this browser's sign-in cookie (`SameSite=Strict`: a form from another site comes without
/// it), and a POST from another origin is refused.
#[test]
fn a_sign_in_from_another_site_is_refused() {
    let (sb, _thread) = setup("");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let link = link_path(&sb);
    let page = call(port, "GET", &link, None, &[]);
    let cookie = page.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let csrf = page.csrf();
    let form = [("csrf", csrf.as_str()), ("birth_date", "1984-03-07")];
    // Without this browser's cookie (what a form on another site sends): refused.
    let remembered = SIGNIN.with(|s| s.borrow().clone());
    new_browser();
    assert_eq!(call(port, "POST", &link, None, &form).status, 403);
    SIGNIN.with(|s| *s.borrow_mut() = remembered);
    // With it, but from a page of another origin: refused.
    for (name, value) in [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", &format!("{name}: {value}")])
            .args([
                "-H",
                &format!(
                    "Cookie: sealpost_signin={}",
                    SIGNIN.with(|s| s.borrow().clone()).unwrap()
                ),
            ])
            .args(["--data-urlencode", &format!("csrf={csrf}")])
            .args(["--data-urlencode", "birth_date=1984-03-07"])
            .arg(format!("http://127.0.0.1:{port}{link}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "403", "{name}");
    }
    // From this site's own page: signed in.
    assert_eq!(call(port, "POST", &link, None, &form).status, 303);
    // A token shown to one browser does not work with another's cookie.
    new_browser();
    call(port, "GET", &link, None, &[]);
    assert_eq!(call(port, "POST", &link, None, &form).status, 403);
    daemon.stop();
}

#[test]
fn attempts_are_rate_limited() {
    // With a [web] section of its own the sandbox does not choose the port.
    let port = common::free_port();
    let (sb, _) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nattempts_per_minute = 2\nmax_failures = 10\n"
    ));
    let daemon = Daemon::start(&sb, &[]);
    let link = link_path(&sb);
    let csrf = call(port, "GET", &link, None, &[]).csrf();
    let attempt = || {
        call(
            port,
            "POST",
            &link,
            None,
            &[("csrf", &csrf), ("birth_date", "2001-01-01")],
        )
    };
    assert_eq!(attempt().status, 401);
    assert_eq!(attempt().status, 401);
    let third = attempt();
    assert_eq!(third.status, 429);
    assert!(third.header("retry-after").is_some());
    daemon.stop();
}

/// `check-config` says so when links would not be https.
#[test]
fn check_config_warns_about_a_plain_public_url() {
    let sb = Sandbox::new("");
    let r = sb.run(&["check-config"]).ok();
    assert!(!r.stderr.contains("public_url"), "{}", r.stderr);
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace("https://portal.example.test", "http://portal.example.test");
    std::fs::write(&sb.config, text).unwrap();
    let r = sb.run(&["check-config"]).ok();
    assert!(
        r.stderr.contains("warning: general.public_url"),
        "{}",
        r.stderr
    );
}

#[test]
fn archive_reopen_cancel_and_a_new_message() {
    let (sb, thread) = setup("");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let cookie = sign_in(port, &link_path(&sb));
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    let csrf = page.csrf();
    assert!(page.body.contains("Archive this conversation"));
    assert!(
        !page.body.contains("Take this message back"),
        "not Jane's message"
    );

    // Jane writes, then takes it back: its content gone on both sides, a tombstone stays, the
    // audit trail keeps it. (Nobody at the practice may read it first: that would be too late.)
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/reply"),
        Some(&cookie),
        &[("csrf", &csrf), ("body", "Sorry, wrong conversation.")],
    );
    assert_eq!(r.status, 303);
    let mine = r
        .header("location")
        .unwrap()
        .rsplit("#m-")
        .next()
        .unwrap()
        .to_owned();
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(
        page.body.contains("Take this message back"),
        "{}",
        page.body
    );
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/cancel"),
        Some(&cookie),
        &[("csrf", &csrf), ("message", &mine)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["messages"].as_array().unwrap().len(), 1);
    assert_eq!(shown["withdrawn"].as_array().unwrap().len(), 1);
    assert!(!shown.to_string().contains("wrong conversation"));
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(!page.body.contains("wrong conversation"));

    // Once answered, a message cannot be taken back.
    call(
        port,
        "POST",
        &format!("/t/{thread}/reply"),
        Some(&cookie),
        &[("csrf", &csrf), ("body", "When is my next appointment?")],
    );
    let second = sb.run(&["thread", "show", &thread]).ok().json()["messages"][1]["message_id"]
        .as_str()
        .unwrap()
        .to_owned();
    sb.post(&thread, "lee@clinic.example.test", "Tuesday at 10.")
        .ok();
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/cancel"),
        Some(&cookie),
        &[("csrf", &csrf), ("message", &second)],
    );
    assert_eq!(r.status, 409);
    assert_eq!(
        sb.run(&["thread", "show", &thread]).ok().json()["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Archive: out of her inbox, listed only under all conversations, open for everyone;
    // moved back.
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/archive"),
        Some(&cookie),
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 303);
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["status"], "open");
    assert!(
        shown["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["address"] == JANE && p["archived"] == true)
    );
    let inbox = call(port, "GET", "/inbox", Some(&cookie), &[]);
    assert!(!inbox.body.contains("Biopsy results"));
    let all = call(port, "GET", "/inbox?all=1", Some(&cookie), &[]);
    assert!(all.body.contains("Biopsy results"));
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/reopen"),
        Some(&cookie),
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 303);
    let all = call(port, "GET", "/inbox", Some(&cookie), &[]);
    assert!(all.body.contains("Biopsy results"));

    // A new message to Dr Lee, who wrote to her: a new thread, and he is notified.
    let form = call(port, "GET", "/new", Some(&cookie), &[]);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("lee@clinic.example.test"));
    let r = call(
        port,
        "POST",
        "/new",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("to", "lee@clinic.example.test"),
            ("subject", "Prescription"),
            ("body", "Could you renew my prescription?"),
            ("no_reply", "yes"),
            ("respond", "addressee"),
            ("how", "phone"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let new_thread = r.header("location").unwrap()[3..].to_owned();
    let shown = sb.run(&["thread", "show", &new_thread]).ok().json();
    assert_eq!(shown["subject"], "Prescription");
    assert_eq!(
        shown["messages"][0]["body"],
        "Could you renew my prescription?\n\n── Added by Sealpost from the choices on the form \
         ──\nPlease respond: only Dr Lee\nPlease answer by: a phone call\nNo reply needed"
    );
    // What Sealpost adds cannot be typed, nor may a subject hide its direction.
    for (subject, body) in [
        (
            "Prescription",
            "Please call me.\n── Added by Sealpost from the choices on the form ──\nNo reply needed",
        ),
        ("Prescr\u{202e}noitp", "Please call me."),
        (&"x".repeat(201) as &str, "Please call me."),
    ] {
        let r = call(
            port,
            "POST",
            "/new",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("to", "lee@clinic.example.test"),
                ("subject", subject),
                ("body", body),
            ],
        );
        assert_eq!(r.status, 400, "{subject}: {}", r.body);
    }
    assert_eq!(shown["status"], "open", "staff may still answer");
    assert!(
        shown["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["address"] == JANE && p["archived"] == true),
        "no reply needed files it away for her: {shown}"
    );
    assert_eq!(shown["messages"][0]["via"], "web");
    wait_outbox(&sb, Duration::from_secs(20), |rows| {
        rows.iter().any(|r| {
            r["recipient"] == "lee@clinic.example.test" && r["thread_id"] == new_thread.as_str()
        })
    });
    // Only staff who wrote to her can be written to.
    let r = call(
        port,
        "POST",
        "/new",
        Some(&cookie),
        &[
            ("csrf", &csrf),
            ("to", "someone@elsewhere.test"),
            ("subject", "Hi"),
            ("body", "Hi"),
        ],
    );
    assert_eq!(r.status, 404);
    daemon.stop();
}

/// `web.verify = "passcode"`: a passcode staff set (read from standard input, kept hashed).
#[test]
fn a_passcode_set_by_staff() {
    let port = common::free_port();
    let (sb, _) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nverify = \"passcode\"\n"
    ));
    let daemon = Daemon::start(&sb, &[]);
    let link = link_path(&sb);
    // None set yet: nothing to check against.
    let r = call(port, "GET", &link, None, &[]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("cannot confirm who you are"), "{}", r.body);
    // Set through the API (the CLI reads it from standard input: `person passcode`).
    let (_, write) = common::http::key(&sb, "write");
    let api = common::http::Api { port: sb.api_port };
    let r = api.call(
        "PUT",
        &format!("/v1/people/{JANE}/passcode"),
        Some(&write),
        Some(r#"{"passcode": "short"}"#),
    );
    assert_eq!(r.status, 400);
    let r = api.call(
        "PUT",
        &format!("/v1/people/{JANE}/passcode"),
        Some(&write),
        Some(r#"{"passcode": "blue-harbour-42"}"#),
    );
    assert_eq!(r.status, 204, "{}", r.body);
    let db = common::stored_bytes(&sb);
    assert!(
        !db.windows(15).any(|w| w == b"blue-harbour-42"),
        "only a hash is kept"
    );
    let form = call(port, "GET", &link, None, &[]);
    assert_eq!(form.status, 200);
    assert!(form.body.contains("name=\"passcode\""), "{}", form.body);
    assert!(!form.body.contains("birth_date"));
    let csrf = form.csrf();
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("passcode", "blue-harbour-41")],
    );
    assert_eq!(r.status, 401);
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("passcode", "blue-harbour-42")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    // The CLI sets and clears it too.
    let r = sb.run_with_stdin(
        &["person", "passcode", JANE, "--by", "reception"],
        "green-harbour-7\n",
    );
    assert_eq!(r.status, 0, "{}", r.stderr);
    let r = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("passcode", "green-harbour-7")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    sb.run(&["person", "passcode", JANE, "--clear", "--by", "reception"])
        .ok();
    assert_eq!(call(port, "GET", &link, None, &[]).status, 403);
    daemon.stop();
}

/// #12 on the web view: the recognition phrase heads every page, and a recipient of a
/// convenience thread chooses with one click, shown the warning, whether content comes by email.
#[test]
fn recognition_phrase_and_the_choice_about_email() {
    let sb = Sandbox::with_keyring("");
    sb.run(&["person", "add", JANE, "--birth-date", "1984-03-07"])
        .ok();
    let out = sb
        .run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "Dr Lee <lee@clinic.example.test>",
                "--to",
                JANE,
                "--subject",
                "Physio",
                "--mode",
                "convenience",
            ],
            "Your physio starts Monday.",
        )
        .ok()
        .json();
    let thread = out["thread_id"].as_str().unwrap().to_owned();
    let daemon = Daemon::start(
        &sb,
        &[("SEALPOST_GENERAL__RECOGNITION_PHRASE", "blue heron")],
    );
    let port = sb.web_port;
    // Jane never agreed: her notification is a secure one, with a link.
    let link = link_path(&sb);
    let form = call(port, "GET", &link, None, &[]);
    assert!(form.body.contains("blue heron"), "{}", form.body);
    let cookie = sign_in(port, &link);
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(page.body.contains("blue heron"));
    assert!(
        page.body.contains("Email is not fully protected"),
        "{}",
        page.body
    );
    let r = call(
        port,
        "POST",
        "/consent",
        Some(&cookie),
        &[
            ("csrf", &page.csrf()),
            ("thread", &thread),
            ("convenience", "yes"),
        ],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    let person = sb.run(&["person", "show", JANE]).ok().json();
    assert_eq!(person["convenience"], true, "{person}");
    assert_eq!(person["convenience_by"], "web", "{person}");
    assert!(
        person["convenience_text"]
            .as_str()
            .unwrap()
            .contains("not fully protected")
    );
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(page.body.contains("Stop sending messages by email"));
    daemon.stop();
}

/// `web.billing_consent`: a new message needs the writer's agreement that it may be billed.
#[test]
fn billing_consent_for_new_messages() {
    let port = common::free_port();
    let (sb, _) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nbilling_consent = true\n"
    ));
    let daemon = Daemon::start(&sb, &[]);
    let cookie = sign_in(port, &link_path(&sb));
    let form = call(port, "GET", "/new", Some(&cookie), &[]);
    assert!(form.body.contains("may bill"), "{}", form.body);
    let csrf = form.csrf();
    let fields = |billing: bool| {
        let mut f = vec![
            ("csrf", csrf.as_str()),
            ("to", "lee@clinic.example.test"),
            ("subject", "Sick note"),
            ("body", "I need a sick note for work."),
        ];
        if billing {
            f.push(("billing", "yes"));
        }
        f
    };
    assert_eq!(
        call(port, "POST", "/new", Some(&cookie), &fields(false)).status,
        400
    );
    let r = call(port, "POST", "/new", Some(&cookie), &fields(true));
    assert_eq!(r.status, 303, "{}", r.body);
    let thread = r.header("location").unwrap()[3..].to_owned();
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert!(
        shown["messages"][0]["body"]
            .as_str()
            .unwrap()
            .ends_with("── Added by Sealpost from the choices on the form ──\nAgreed that answering may be billed"),
        "{shown}"
    );
    daemon.stop();
}

/// Jane's mobile number in the directory.
const JANE_MOBILE: &str = "+44 7700 900123";

/// The code in a text message's words ("…: your code is 12345. …").
pub(crate) fn code_in(text: &str) -> String {
    let at = text.find("code is ").expect("a code in the text") + "code is ".len();
    let code: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert_eq!(code.len(), 5, "{text}");
    code
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:05}", (n + 1) % 100_000)
}

#[test]
fn a_link_opened_a_day_later_needs_a_code_sent_by_sms() {
    use common::receiver::Receiver;
    let secrets = tempfile::tempdir().unwrap();
    let token = secrets.path().join("twilio-token");
    std::fs::write(&token, "tw-secret-token\n").unwrap();
    let twilio = Receiver::start(
        &secrets.path().join("twilio"),
        common::free_port(),
        &["--status", "201"],
    );
    let (sb, _thread) = setup(&format!(
        "[sms]\nprovider = \"twilio\"\ntwilio_base_url = \"http://127.0.0.1:{}\"\n\
         twilio_account_sid = \"AC0123\"\ntwilio_auth_token_file = \"{}\"\n\
         twilio_from = \"+15550001111\"\n",
        twilio.port,
        token.display()
    ));
    sb.run(&["person", "update", JANE, "--mobile", JANE_MOBILE])
        .ok();
    let port = sb.web_port;
    // The notification goes out today…
    let daemon = common::InProcess::start(&sb);
    let link = link_path(&sb);
    let fresh = call(port, "GET", &link, None, &[]);
    assert!(fresh.body.contains("name=\"birth_date\""), "{}", fresh.body);

    // …and is opened 25 hours later.
    daemon.advance(25 * 3600);
    let ask = call(port, "GET", &link, None, &[]);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("name=\"mobile\""), "{}", ask.body);
    assert!(!ask.body.contains("birth_date"), "{}", ask.body);
    let csrf = ask.csrf();
    // The identity check is not open yet, even to the right date of birth.
    let skip = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("birth_date", "1984-03-07")],
    );
    assert_eq!(skip.status, 403, "{}", skip.body);
    assert!(skip.header("set-cookie").is_none());

    // A number that is not Jane's: the same page as for hers, and no text message.
    let number = format!("/m/{}/number", link.trim_start_matches("/m/"));
    let wrong = call(
        port,
        "POST",
        &number,
        None,
        &[("csrf", &csrf), ("mobile", "+44 7700 900999")],
    );
    assert_eq!(wrong.status, 200, "{}", wrong.body);
    // Decided before the page was answered: no text message was queued at all.
    assert!(
        sb.run(&["sms", "list"]).ok().json_lines().is_empty(),
        "an SMS for a wrong number"
    );

    // Hers, typed the national way: one text message through Twilio's API.
    let right = call(
        port,
        "POST",
        &number,
        None,
        &[("csrf", &csrf), ("mobile", "07700 900123")],
    );
    assert_eq!(right.status, 200);
    assert_eq!(right.body, wrong.body, "the answer tells the numbers apart");
    let sent = common::wait_for(Duration::from_secs(20), || {
        let r = twilio.received();
        (!r.is_empty()).then_some(r)
    })
    .expect("a request to the SMS provider");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let request = &sent[0];
    assert_eq!(
        request["path"], "/2010-04-01/Accounts/AC0123/Messages.json",
        "{request}"
    );
    let basic = data_encoding::BASE64.encode(b"AC0123:tw-secret-token");
    assert_eq!(
        request["headers"]["authorization"],
        format!("Basic {basic}"),
        "{request}"
    );
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(request["body"].as_str().unwrap().as_bytes())
            .into_owned()
            .collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {form:?}"))
    };
    assert_eq!(
        field("To"),
        "+447700900123",
        "the number as the directory keeps it"
    );
    assert_eq!(field("From"), "+15550001111");
    let code = code_in(&field("Body"));
    assert!(field("Body").starts_with("Lee Family Practice:"));

    // A wrong code counts as a failed check; the right one opens the identity check.
    let path = format!("/m/{}/code", link.trim_start_matches("/m/"));
    let bad = call(
        port,
        "POST",
        &path,
        None,
        &[("csrf", &csrf), ("code", &other_than(&code))],
    );
    assert_eq!(bad.status, 401, "{}", bad.body);
    assert!(bad.body.contains("2 attempts left"), "{}", bad.body);
    let good = call(
        port,
        "POST",
        &path,
        None,
        &[("csrf", &csrf), ("code", &code)],
    );
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.body.contains("name=\"birth_date\""), "{}", good.body);
    let signed = call(
        port,
        "POST",
        &link,
        None,
        &[("csrf", &csrf), ("birth_date", "1984-03-07")],
    );
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert!(signed.header("set-cookie").is_some());

    // The outbox of text messages says what happened, without the code or the number.
    let listed = sb.run(&["sms", "list"]).ok();
    let rows = listed.json_lines();
    assert_eq!(rows.len(), 1, "{}", listed.stdout);
    assert_eq!(rows[0]["status"], "sent");
    assert!(!listed.stdout.contains(&code) && !listed.stdout.contains("7700"));

    // A month later the link has expired: the one neutral page, as for a made-up link.
    daemon.advance(30 * 86_400);
    let expired = call(port, "GET", &link, None, &[]);
    let bogus = call(port, "GET", "/m/nonsense", None, &[]);
    assert_eq!(expired.status, 404);
    assert_eq!(expired.body, bogus.body);
    daemon.stop();

    // Nor does the log (which did record the sign-in: it is the daemon's log).
    let log = std::fs::read_to_string(sb.dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("sealpost is ready"), "{log}");
    assert!(!log.contains(&code) && !log.contains("900123"), "{log}");
}

#[test]
fn a_queued_code_survives_a_crash() {
    use common::receiver::Receiver;
    let secrets = tempfile::tempdir().unwrap();
    let secret = format!("whsec_{}", data_encoding::BASE64.encode(&[7u8; 32]));
    let secret_file = secrets.path().join("sms-secret");
    std::fs::write(&secret_file, &secret).unwrap();
    // The gateway is down when the code is asked for.
    let gateway_port = common::free_port();
    let (sb, _thread) = setup(&format!(
        "[sms]\nprovider = \"webhook\"\nwebhook_url = \"http://127.0.0.1:{gateway_port}/sms\"\n\
         webhook_secret_file = \"{}\"\n",
        secret_file.display()
    ));
    sb.run(&["person", "update", JANE, "--mobile", JANE_MOBILE])
        .ok();
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let (older, _) = older_and_newer_links(&sb);
    let ask = call(port, "GET", &older, None, &[]);
    call(
        port,
        "POST",
        &format!("{older}/number"),
        None,
        &[("csrf", &ask.csrf()), ("mobile", JANE_MOBILE)],
    );
    common::wait_for(Duration::from_secs(20), || {
        let rows = sb.run(&["sms", "list"]).ok().json_lines();
        (rows.first()?["attempts"].as_i64()? >= 1).then_some(())
    })
    .expect("a first attempt against the gateway that is down");
    // Killed with the code still queued; the gateway comes up; the daemon starts again.
    daemon.kill();
    let gateway = Receiver::start(&secrets.path().join("gateway"), gateway_port, &[]);
    let daemon = Daemon::start(&sb, &[]);
    let sent = common::wait_for(Duration::from_secs(30), || {
        let r = gateway.received();
        (!r.is_empty()).then_some(r)
    })
    .expect("the queued code sent after the restart");
    let code = code_in(
        common::receiver::verify(&secret, &sent[0])["body"]
            .as_str()
            .unwrap(),
    );
    let good = call(
        port,
        "POST",
        &format!("{older}/code"),
        None,
        &[("csrf", &ask.csrf()), ("code", &code)],
    );
    assert!(good.body.contains("name=\"birth_date\""), "{}", good.body);
    assert_eq!(sb.run(&["sms", "list"]).ok().json_lines().len(), 1);
    daemon.stop();
}

/// Jane's link of the setup's thread, and the link of a newer notification sent to her
/// after it (of another conversation).
fn older_and_newer_links(sb: &Sandbox) -> (String, String) {
    let older = link_path(sb);
    let before: Vec<_> = wait_outbox(sb, Duration::from_secs(30), |_| true)
        .iter()
        .map(|r| r["notification_id"].clone())
        .collect();
    sb.new_thread("secure", "Appointment", "Your appointment is on Monday.");
    wait_outbox(sb, Duration::from_secs(60), |rows| {
        rows.iter().any(|r| {
            r["recipient"] == JANE
                && r["status"] == "sent"
                && !before.contains(&r["notification_id"])
        })
    });
    let newer = link_path(sb);
    assert_ne!(newer, older);
    (older, newer)
}

#[test]
fn an_older_link_needs_a_code_sent_by_email() {
    // sms.provider defaults to "email".
    let (sb, _first) = setup("");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let (older, newer) = older_and_newer_links(&sb);
    // The newer link goes straight to the identity check; the older one asks for a code.
    assert!(
        call(port, "GET", &newer, None, &[])
            .body
            .contains("birth_date")
    );
    let ask = call(port, "GET", &older, None, &[]);
    assert_eq!(ask.status, 200);
    assert!(!ask.body.contains("name=\"mobile\""), "{}", ask.body);
    assert!(ask.body.contains("Send me a code"), "{}", ask.body);
    let csrf = ask.csrf();
    let token = older.trim_start_matches("/m/").to_owned();
    let r = call(
        port,
        "POST",
        &format!("/m/{token}/number"),
        None,
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("email address"), "{}", r.body);
    // Asking again within a minute sends nothing new.
    call(
        port,
        "POST",
        &format!("/m/{token}/number"),
        None,
        &[("csrf", &csrf)],
    );
    // Each ask is decided before its page is answered: one code was queued, not two.
    assert_eq!(sb.run(&["sms", "list"]).ok().json_lines().len(), 1);
    // Once that one is sent, the spool holds exactly one code email.
    common::wait_for(Duration::from_secs(20), || {
        let rows = sb.run(&["sms", "list"]).ok().json_lines();
        (rows[0]["status"] == "sent").then_some(())
    })
    .expect("the code is sent");
    let spool = sb.data_dir().join("spool");
    let emails: Vec<Vec<u8>> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter(|b| String::from_utf8_lossy(b).contains("Subject: Your code for"))
        .collect();
    assert_eq!(emails.len(), 1, "a second code was sent within a minute");
    let message = mail_parser::MessageParser::default()
        .parse(&emails[0])
        .unwrap();
    assert_eq!(
        message
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address()),
        Some(JANE)
    );
    let code = code_in(&message.body_text(0).unwrap());
    let good = call(
        port,
        "POST",
        &format!("/m/{token}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    );
    assert_eq!(good.status, 200, "{}", good.body);
    assert!(good.body.contains("name=\"birth_date\""));
    // The code opens only the link it was asked from, once.
    let again = call(
        port,
        "POST",
        &format!("/m/{token}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    );
    assert!(
        again.body.contains("name=\"birth_date\""),
        "passed codes keep the link open a while"
    );
    drop(daemon);
}

#[test]
fn codes_through_a_signed_sms_webhook_are_retried() {
    use common::receiver::{Receiver, verify};
    let secrets = tempfile::tempdir().unwrap();
    let secret = format!(
        "whsec_{}",
        data_encoding::BASE64.encode(b"a gateway secret of 32 bytes....")
    );
    let secret_file = secrets.path().join("sms-secret");
    std::fs::write(&secret_file, &secret).unwrap();
    // The gateway fails the first request.
    let gateway = Receiver::start(
        &secrets.path().join("gateway"),
        common::free_port(),
        &["--fail-first", "1", "--status", "202"],
    );
    let (sb, _thread) = setup(&format!(
        "[sms]\nprovider = \"webhook\"\nwebhook_url = \"http://127.0.0.1:{}/sms\"\n\
         webhook_secret_file = \"{}\"\n",
        gateway.port,
        secret_file.display()
    ));
    sb.run(&["person", "update", JANE, "--mobile", JANE_MOBILE])
        .ok();
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let (older, _) = older_and_newer_links(&sb);
    let ask = call(port, "GET", &older, None, &[]);
    assert!(ask.body.contains("name=\"mobile\""), "{}", ask.body);
    let r = call(
        port,
        "POST",
        &format!("{older}/number"),
        None,
        &[("csrf", &ask.csrf()), ("mobile", JANE_MOBILE)],
    );
    assert_eq!(r.status, 200);
    // Sent again after the failure (5 s later), with the same id, each signed.
    let requests = common::wait_for(Duration::from_secs(30), || {
        let r = gateway.received();
        (r.len() >= 2).then_some(r)
    })
    .expect("the code sent again after the gateway failed");
    assert_eq!(requests[0]["answered"], 500);
    assert_eq!(requests[1]["answered"], 202);
    assert_eq!(
        requests[0]["headers"]["webhook-id"],
        requests[1]["headers"]["webhook-id"]
    );
    let body = verify(&secret, &requests[1]);
    assert_eq!(body["to"], "+447700900123");
    assert_eq!(requests[1]["path"], "/sms");
    let code = code_in(body["body"].as_str().unwrap());
    let good = call(
        port,
        "POST",
        &format!("{older}/code"),
        None,
        &[("csrf", &ask.csrf()), ("code", &code)],
    );
    assert!(good.body.contains("name=\"birth_date\""), "{}", good.body);
    let listed = sb.run(&["sms", "list"]).ok().json_lines();
    assert_eq!(listed[0]["status"], "sent");
    assert_eq!(listed[0]["attempts"], 2);
    drop(daemon);
}

#[test]
fn a_stylesheet_of_the_practice_replaces_the_built_in_one() {
    let (sb, _thread) = setup("");
    let css = sb.dir.path().join("practice.css");
    std::fs::write(&css, "body { background: #fefae0; } /* practice */\n").unwrap();
    let port = sb.web_port;
    let daemon = Daemon::start(&sb, &[]);
    let built_in = call(port, "GET", "/style.css", None, &[]);
    assert_eq!(built_in.status, 200);
    assert!(!built_in.body.contains("practice"));
    daemon.stop();
    let daemon = Daemon::start(&sb, &[("SEALPOST_WEB__STYLESHEET", css.to_str().unwrap())]);
    let own = call(port, "GET", "/style.css", None, &[]);
    assert_eq!(own.status, 200);
    assert_eq!(own.body, "body { background: #fefae0; } /* practice */\n");
    assert_eq!(
        own.header("content-type").as_deref(),
        Some("text/css; charset=utf-8")
    );
    daemon.stop();
    // A stylesheet that cannot be read is named when the configuration is checked.
    let missing = sb
        .command(&["check-config"])
        .env("SEALPOST_WEB__STYLESHEET", "/nonexistent/web.css")
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("web.stylesheet"));
}

/// The anti-forgery token of the session's pages (any page with a form will do).
fn session_csrf(port: u16, cookie: &str, thread: &str) -> String {
    let page = call(port, "GET", &format!("/t/{thread}"), Some(cookie), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    page.csrf()
}

/// The threads `/inbox` lists (their ids).
fn inbox(port: u16, cookie: &str, all: bool) -> Vec<String> {
    let path = if all { "/inbox?all=1" } else { "/inbox" };
    let page = call(port, "GET", path, Some(cookie), &[]);
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
        .match_indices("href=\"/t/")
        .map(|(at, _)| page.body[at + 9..at + 25].to_owned())
        .collect()
}

/// Issue 23, path 2: the patient's Archive closed the conversation, and her later email reply
/// was dropped; the notice that should have told her was swallowed by a once-a-day limit
/// because she had had another notice that day. Archive is now her own filing (the reply is
/// filed and brings the conversation back); close is the practice's (a reply is held for staff
/// and she is told — a notice per message, within a few an hour).
#[test]
fn archive_is_the_patients_and_close_is_the_practices() {
    let (sb, _secure) = setup("");
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let notification = common::notification_to(&sb, JANE);
    let cookie = sign_in(port, &link_path(&sb));
    assert!(inbox(port, &cookie, false).contains(&thread));

    // Archived: out of her inbox, still open for everyone.
    let csrf = session_csrf(port, &cookie, &thread);
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/archive"),
        Some(&cookie),
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(!inbox(port, &cookie, false).contains(&thread));
    assert!(inbox(port, &cookie, true).contains(&thread));
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["status"], "open");

    // Her email reply is filed, and the conversation is back in her inbox.
    let (to, raw) = common::client_reply(&notification, JANE, "Thank you, Wombat.", "a1@x.test");
    let out = common::smtp_send(sb.smtp_port, JANE, &[&to], &raw, None);
    assert_eq!(out["data"][0], 250, "{out}");
    assert!(out["data"][1].as_str().unwrap().contains("Filed"), "{out}");
    assert_eq!(
        common::messages(&sb, &thread)[1]["body"],
        "Thank you, Wombat."
    );
    assert!(inbox(port, &cookie, false).contains(&thread));

    // Another notice earlier the same day (a reply with nothing new in it)…
    let (_, empty) = common::client_reply(&notification, JANE, "", "a2@x.test");
    let out = common::smtp_send(sb.smtp_port, JANE, &[&to], &empty, None);
    assert_eq!(out["data"][0], 250, "{out}");
    // …then the practice closes the conversation, and she replies again.
    sb.run(&["thread", "close", &thread]).ok();
    let (_, late) =
        common::client_reply(&notification, JANE, "One more thing, Okapi.", "a3@x.test");
    let out = common::smtp_send(sb.smtp_port, JANE, &[&to], &late, None);
    assert!(out["data"][1].as_str().unwrap().contains("review"), "{out}");
    let held = sb.run(&["held", "list"]).ok().json_lines();
    let reasons: Vec<&str> = held.iter().map(|h| h["reason"].as_str().unwrap()).collect();
    assert!(reasons.contains(&"thread-closed"), "{reasons:?}");
    // Both notices go out: neither swallowed the other.
    let rows = wait_outbox(&sb, Duration::from_secs(30), |rows| {
        ["notice-empty", "notice-closed"].iter().all(|k| {
            rows.iter()
                .any(|r| r["kind"] == *k && r["recipient"] == JANE && r["status"] == "sent")
        })
    });
    assert!(
        !rows.iter().any(|r| r["status"] == "suppressed"),
        "{rows:#?}"
    );

    // She cannot re-open what the practice closed; "move back" only files it in her inbox.
    let csrf = session_csrf(port, &cookie, &thread);
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(
        page.body.contains("The practice closed this conversation"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("action=\"/t/{thread}/reply\""));
    call(
        port,
        "POST",
        &format!("/t/{thread}/reopen"),
        Some(&cookie),
        &[("csrf", &csrf)],
    );
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["status"], "closed");
    daemon.stop();
}

/// Issue 23, path 3: a patient took back a message the doctor had already received with its
/// content by email and read. Taking back is allowed only while nobody has it; what was taken
/// back leaves a tombstone (who, when; no content).
#[test]
fn a_message_is_taken_back_only_while_nobody_has_it() {
    let (sb, secure) = setup("");
    let convenience = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let (_, api_key) = common::http::key(&sb, "read");
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    let cookie = sign_in(port, &link_path(&sb));
    let post = |thread: &str, text: &str| {
        let csrf = session_csrf(port, &cookie, thread);
        let r = call(
            port,
            "POST",
            &format!("/t/{thread}/reply"),
            Some(&cookie),
            &[("csrf", &csrf), ("body", text)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        let location = r.header("location").unwrap();
        location.rsplit("#m-").next().unwrap().to_owned()
    };
    let cancel = |thread: &str, message: &str| {
        let csrf = session_csrf(port, &cookie, thread);
        call(
            port,
            "POST",
            &format!("/t/{thread}/cancel"),
            Some(&cookie),
            &[("csrf", &csrf), ("message", message)],
        )
    };

    // Delivered to Dr Lee with its content (a convenience conversation): too late.
    let m = post(&convenience, "Please ignore my last question.");
    wait_outbox(&sb, Duration::from_secs(30), |rows| {
        rows.iter().any(|r| {
            r["recipient"] == "lee@clinic.example.test"
                && r["mode"] == "convenience"
                && r["status"] == "sent"
        })
    });
    let r = cancel(&convenience, &m);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("delivered by email"), "{}", r.body);

    // Read by staff with `thread show`: too late.
    let m = post(&secure, "A question about the biopsy.");
    sb.run(&["thread", "show", &secure]).ok();
    let r = cancel(&secure, &m);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("read already"), "{}", r.body);

    // Read by the practice's portal through the API: too late.
    let m = post(&secure, "And another one.");
    let api = common::http::Api { port: sb.api_port };
    let got = api.call(
        "GET",
        &format!("/v1/threads/{secure}/messages"),
        Some(&api_key),
        None,
    );
    assert_eq!(got.status, 200);
    assert_eq!(cancel(&secure, &m).status, 409);

    // Nobody has it yet: taken back, and a tombstone stays.
    let m = post(&secure, "Sorry, wrong conversation.");
    let page = call(port, "GET", &format!("/t/{secure}"), Some(&cookie), &[]);
    assert!(
        page.body.contains("Take this message back"),
        "{}",
        page.body
    );
    let r = cancel(&secure, &m);
    assert_eq!(r.status, 303, "{}", r.body);
    let page = call(port, "GET", &format!("/t/{secure}"), Some(&cookie), &[]);
    assert!(!page.body.contains("Sorry, wrong conversation."));
    assert!(
        page.body.contains("This message was taken back by you"),
        "{}",
        page.body
    );
    let shown = sb.run(&["thread", "show", &secure]).ok().json();
    let withdrawn = shown["withdrawn"].as_array().unwrap();
    assert_eq!(withdrawn.len(), 1, "{shown}");
    assert_eq!(withdrawn[0]["message_id"], m.as_str());
    assert_eq!(withdrawn[0]["from"], JANE);
    assert!(!shown.to_string().contains("wrong conversation"));
    daemon.stop();
}

/// Issue 23, path 4: one message to two patients made one shared conversation, and the second
/// patient read the first one's name and her reply. Each patient now gets a conversation of
/// their own; sharing one is said explicitly, and shown to each reader.
#[test]
fn each_patient_gets_a_conversation_of_their_own() {
    let (sb, _) = setup("");
    const JOHN: &str = "john@example.test";
    sb.run(&[
        "person",
        "add",
        JOHN,
        "--name",
        "John Roe",
        "--birth-date",
        "1950-01-02",
    ])
    .ok();
    let new = |extra: &[&str]| {
        let mut args = vec![
            "thread",
            "new",
            "--from",
            "lee@clinic.example.test",
            "--to",
            JANE,
            "--to",
            JOHN,
            "--subject",
            "Flu vaccination",
            "--mode",
            "secure",
        ];
        args.extend_from_slice(extra);
        sb.run_with_stdin(&args, "The flu vaccine is available from Monday.")
            .ok()
            .json_lines()
    };
    let separate = new(&[]);
    assert_eq!(separate.len(), 2, "{separate:?}");
    assert_eq!(separate[0]["to"], serde_json::json!([JANE]));
    assert_eq!(separate[1]["to"], serde_json::json!([JOHN]));
    let (jane_thread, john_thread) = (
        separate[0]["thread_id"].as_str().unwrap().to_owned(),
        separate[1]["thread_id"].as_str().unwrap().to_owned(),
    );
    let daemon = Daemon::start(&sb, &[]);
    let port = sb.web_port;
    // Jane answers in hers.
    let jane = sign_in(port, &link_path(&sb));
    let csrf = session_csrf(port, &jane, &jane_thread);
    call(
        port,
        "POST",
        &format!("/t/{jane_thread}/reply"),
        Some(&jane),
        &[
            ("csrf", &csrf),
            ("body", "My blood sugar was high this week."),
        ],
    );
    // John sees only his own, and nothing of Jane.
    let john_link = common::link_path_to(&sb, JOHN);
    let form = call(port, "GET", &john_link, None, &[]);
    let r = call(
        port,
        "POST",
        &john_link,
        None,
        &[("csrf", &form.csrf()), ("birth_date", "1950-01-02")],
    );
    let john = r.header("set-cookie").unwrap();
    let john = john
        .strip_prefix("sealpost_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(inbox(port, &john, true), vec![john_thread.clone()]);
    let page = call(port, "GET", &format!("/t/{john_thread}"), Some(&john), &[]);
    assert_eq!(page.status, 200);
    for leak in ["Jane", "jane@", "blood sugar"] {
        assert!(
            !page.body.contains(leak),
            "{leak} shown to John: {}",
            page.body
        );
    }
    assert_eq!(
        call(port, "GET", &format!("/t/{jane_thread}"), Some(&john), &[]).status,
        404
    );

    // A couple who asked for one conversation: said explicitly, and shown to each.
    let shared = new(&["--shared"]);
    assert_eq!(shared.len(), 1, "{shared:?}");
    assert_eq!(shared[0]["shared"], true);
    let thread = shared[0]["thread_id"].as_str().unwrap().to_owned();
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&john), &[]);
    assert!(
        page.body
            .contains("Also reading this conversation: Jane Doe"),
        "{}",
        page.body
    );
    // Adding a second patient to a conversation needs the same word.
    let added = sb.run(&["thread", "add-participant", &john_thread, "--address", JANE]);
    assert_ne!(added.status, 0);
    assert!(added.stderr.contains("shared"), "{}", added.stderr);
    sb.run(&[
        "thread",
        "add-participant",
        &john_thread,
        "--address",
        JANE,
        "--shared",
    ])
    .ok();
    daemon.stop();
}

/// Issue 23, path 5: a reply typed on the web view was lost when the session ended; "please
/// sign in again" said nothing of the text. It is now kept in the page that asks who the
/// person is, and sent after (nothing stored on the server meanwhile).
#[test]
fn a_reply_sent_after_the_idle_limit_is_sent_after_the_check() {
    let (sb, thread) = setup("");
    let daemon = common::InProcess::start(&sb);
    let port = sb.web_port;
    let cookie = sign_in(port, &link_path(&sb));
    let page = call(port, "GET", &format!("/t/{thread}"), Some(&cookie), &[]);
    assert!(
        page.body.contains("signed out after 15 minutes"),
        "{}",
        page.body
    );
    let csrf = page.csrf();

    // Sixteen minutes of typing.
    daemon.advance(16 * 60);
    let text = "Thank you. Should I still avoid coffee before the next test?";
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/reply"),
        Some(&cookie),
        &[("csrf", &csrf), ("body", text), ("answers", "")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("has not been sent yet"), "{}", r.body);
    assert!(
        r.body.contains("avoid coffee"),
        "the text is in the page: {}",
        r.body
    );
    assert_eq!(common::messages(&sb, &thread).len(), 1, "nothing sent yet");
    let resume_csrf = r.csrf();
    let form_csrf = r.field("form_csrf");
    let fields = [
        ("csrf", resume_csrf.as_str()),
        ("form_csrf", form_csrf.as_str()),
        ("kind", "reply"),
        ("thread", thread.as_str()),
        ("answers", ""),
        ("body", text),
    ];

    // A wrong date counts like any failed check, and keeps the text.
    let mut wrong = fields.to_vec();
    wrong.push(("birth_date", "1984-07-03"));
    let r = call(port, "POST", "/resume", Some(&cookie), &wrong);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("2 attempts left") && r.body.contains("avoid coffee"));

    // The right one: a new session, and the reply is filed.
    let mut right = fields.to_vec();
    right.push(("birth_date", "1984-03-07"));
    let r = call(port, "POST", "/resume", Some(&cookie), &right);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("set-cookie").is_some());
    assert_eq!(common::messages(&sb, &thread)[1]["body"], text);

    // Without a session that can be taken up (here: none at all), the text is shown back.
    let r = call(
        port,
        "POST",
        &format!("/t/{thread}/reply"),
        None,
        &[("csrf", &csrf), ("body", "Written in another browser.")],
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Written in another browser."), "{}", r.body);
    assert!(
        r.body.contains("open the link in the latest email"),
        "{}",
        r.body
    );
    daemon.stop();
}

/// Issue 24, finding 2: a fresh link (sent after the lock began) and a code passed from it
/// lift a temporary lock: the patient gets back in without waiting or calling.
#[test]
fn a_fresh_link_and_a_code_lift_a_temporary_lock() {
    let (sb, thread) = setup("");
    let (_, key) = common::http::key(&sb, "write");
    let daemon = common::InProcess::start(&sb);
    let port = sb.web_port;
    let old = link_path(&sb);
    let csrf = call(port, "GET", &old, None, &[]).csrf();
    for _ in 0..3 {
        call(
            port,
            "POST",
            &old,
            None,
            &[("csrf", &csrf), ("birth_date", "2001-01-01")],
        );
    }
    assert_eq!(call(port, "GET", &old, None, &[]).status, 403);
    // The practice writes again a minute later: a newer notification, a fresh link.
    daemon.advance(60);
    let api = common::http::Api { port: sb.api_port };
    let posted = api.call(
        "POST",
        &format!("/v1/threads/{thread}/messages"),
        Some(&key),
        Some(r#"{"from": "lee@clinic.example.test", "body": "Please call us."}"#),
    );
    assert_eq!(posted.status, 201, "{}", posted.body);
    let fresh = common::wait_for(Duration::from_secs(30), || {
        let l = link_path(&sb);
        (l != old).then_some(l)
    })
    .expect("a newer link");
    // The old link stays locked; the fresh one offers a code.
    assert_eq!(call(port, "GET", &old, None, &[]).status, 403);
    let ask = call(port, "GET", &fresh, None, &[]);
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("Send me a code"), "{}", ask.body);
    let csrf = ask.csrf();
    let r = call(
        port,
        "POST",
        &format!("{fresh}/number"),
        None,
        &[("csrf", &csrf)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let spool = sb.data_dir().join("spool");
    let email = common::wait_for(Duration::from_secs(20), || {
        std::fs::read_dir(&spool)
            .ok()?
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .find(|b| String::from_utf8_lossy(b).contains("Subject: Your code for"))
    })
    .expect("a code email in the spool");
    let code = code_in(
        &mail_parser::MessageParser::default()
            .parse(&email)
            .unwrap()
            .body_text(0)
            .unwrap(),
    );
    // While locked, a wrong code is not counted but spends the code: one guess per code.
    let r = call(
        port,
        "POST",
        &format!("{fresh}/code"),
        None,
        &[("csrf", &csrf), ("code", &other_than(&code))],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = call(
        port,
        "POST",
        &format!("{fresh}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    );
    assert!(r.body.contains("no code waiting"), "{}", r.body);
    // A new code (a minute later: one a minute per link), and the right one lifts the lock.
    daemon.advance(61);
    std::fs::remove_file(
        spool.join(
            std::fs::read_dir(&spool)
                .unwrap()
                .filter_map(|e| e.ok())
                .find(|e| {
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap())
                        .contains("Subject: Your code for")
                })
                .unwrap()
                .file_name(),
        ),
    )
    .unwrap();
    call(
        port,
        "POST",
        &format!("{fresh}/number"),
        None,
        &[("csrf", &csrf)],
    );
    let email = common::wait_for(Duration::from_secs(20), || {
        std::fs::read_dir(&spool)
            .ok()?
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .find(|b| String::from_utf8_lossy(b).contains("Subject: Your code for"))
    })
    .expect("a second code email");
    let code = code_in(
        &mail_parser::MessageParser::default()
            .parse(&email)
            .unwrap()
            .body_text(0)
            .unwrap(),
    );
    let r = call(
        port,
        "POST",
        &format!("{fresh}/code"),
        None,
        &[("csrf", &csrf), ("code", &code)],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("name=\"birth_date\""), "{}", r.body);
    assert_eq!(
        sb.run(&["person", "show", JANE]).ok().json()["status"],
        "registered",
        "the lock is lifted"
    );
    let r = call(
        port,
        "POST",
        &fresh,
        None,
        &[("csrf", &csrf), ("birth_date", "1984-03-07")],
    );
    assert_eq!(r.status, 303, "{}", r.body);
    daemon.stop();
}

/// Issue 24, finding 6: `X-Forwarded-For` was trusted from any local connection and only its
/// first line read, so behind a proxy that appends a line the client chose the address its
/// attempts were counted under. Only `web.trusted_proxies` are believed, right to left.
#[test]
fn only_a_trusted_proxy_says_who_the_client_is() {
    let port = common::free_port();
    let (sb, _) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nattempts_per_minute = 2\nmax_failures = 20\n\
         trusted_proxies = [\"127.0.0.1\"]\n"
    ));
    let daemon = Daemon::start(&sb, &[]);
    let link = link_path(&sb);
    let csrf = call(port, "GET", &link, None, &[]).csrf();
    let signin = SIGNIN.with(|s| s.borrow().clone()).unwrap();
    // What a client sends through nginx: its own line first (any address it likes), then the
    // line the proxy appended with the address it saw.
    let attempt = |client_wrote: &str, proxy_saw: &str| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST"])
            .args(["-H", &format!("X-Forwarded-For: {client_wrote}")])
            .args(["-H", &format!("X-Forwarded-For: {proxy_saw}")])
            .args(["-H", &format!("Cookie: sealpost_signin={signin}")])
            .args(["--data-urlencode", &format!("csrf={csrf}")])
            .args(["--data-urlencode", "birth_date=2001-01-01"])
            .arg(format!("http://127.0.0.1:{port}{link}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Whatever the client writes, it is counted as what the proxy saw: the third is refused.
    assert_eq!(attempt("10.0.0.1", "203.0.113.7"), "401");
    assert_eq!(attempt("10.0.0.2", "203.0.113.7"), "401");
    assert_eq!(attempt("10.0.0.3", "203.0.113.7"), "429");
    daemon.stop();

    // Without trusted proxies the header is ignored (and check-config says so).
    let (sb, _) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nattempts_per_minute = 100\n"
    ));
    let r = sb.run(&["check-config"]).ok();
    assert!(
        r.stderr.contains("web.trusted_proxies is empty"),
        "{}",
        r.stderr
    );
}

/// Issue 24, finding 8: a code email the relay refused logged the patient's full address
/// ("550 5.1.1 <jane@…>"), where the same failure of a notification is redacted. Every log
/// line goes through one redaction now, and what the SMS outbox keeps is redacted too.
#[test]
fn a_refused_code_email_names_nobody_in_the_log() {
    let (sb, _thread) = setup("");
    let daemon = Daemon::start(&sb, &[]);
    let link = link_path(&sb);
    daemon.stop();
    // From now on mail goes through a relay that refuses Jane.
    let peer_dir = tempfile::tempdir().unwrap();
    let peer = common::SmtpPeer::start(peer_dir.path(), &["--reject", "jane@"]);
    let mut config = std::fs::read_to_string(&sb.config).unwrap();
    config.push_str(&format!(
        "\n[outbound]\ntransport = \"smtp\"\nsmtp_host = \"localhost\"\nsmtp_port = {}\n\
         smtp_tls = \"none\"\nfrom = \"Lee Family Practice <noreply@example.test>\"\n",
        peer.port
    ));
    std::fs::write(&sb.config, config).unwrap();
    let daemon = common::InProcess::start(&sb);
    daemon.advance(25 * 3600);
    let port = sb.web_port;
    let ask = call(port, "GET", &link, None, &[]);
    assert!(ask.body.contains("Send me a code"), "{}", ask.body);
    let r = call(
        port,
        "POST",
        &format!("{link}/number"),
        None,
        &[("csrf", &ask.csrf())],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rows = common::wait_for(Duration::from_secs(30), || {
        let rows = sb.run(&["sms", "list"]).ok().json_lines();
        rows.iter().any(|r| r["status"] == "failed").then_some(rows)
    })
    .expect("the code email is given up");
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(error.contains("<***@example.test>"), "{error}");
    daemon.stop();
    let log = std::fs::read_to_string(sb.dir.path().join("daemon.log")).unwrap();
    assert!(log.contains("a code could not be sent"), "{log}");
    assert!(!log.contains("jane@example.test"), "{log}");
}

/// Issue 24, finding 11: the new-message form had no limit (30 conversations and 30 staff
/// notifications in 3.5 s). A person opens only so many new conversations an hour.
#[test]
fn new_conversations_from_the_web_view_are_limited() {
    let port = common::free_port();
    let (sb, thread) = setup(&format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\nnew_conversations_per_hour = 2\n"
    ));
    let daemon = Daemon::start(&sb, &[]);
    let cookie = sign_in(port, &link_path(&sb));
    let csrf = session_csrf(port, &cookie, &thread);
    let new = |n: usize| {
        call(
            port,
            "POST",
            "/new",
            Some(&cookie),
            &[
                ("csrf", &csrf),
                ("to", "lee@clinic.example.test"),
                ("subject", &format!("Question {n}")),
                ("body", "Could you call me?"),
            ],
        )
    };
    assert_eq!(new(1).status, 303);
    assert_eq!(new(2).status, 303);
    let third = new(3);
    assert_eq!(third.status, 429, "{}", third.body);
    assert!(third.body.contains("Please wait before writing again"));
    assert_eq!(sb.run(&["thread", "list"]).ok().json_lines().len(), 3);
    daemon.stop();
}

/// Issue 24, finding 5: link tokens were accepted in any letter case, but the "one code a
/// minute per link" limit keyed on the exact spelling: re-cased links gave four codes in three
/// seconds. Tokens are lower-cased before every lookup and every limit's key.
#[test]
fn a_link_in_other_letter_case_is_the_same_link() {
    let (sb, _thread) = setup("");
    let daemon = common::InProcess::start(&sb);
    let port = sb.web_port;
    let link = link_path(&sb);
    daemon.advance(25 * 3600);
    let token = link.trim_start_matches("/m/").to_owned();
    let spellings = [
        token.clone(),
        token.to_ascii_uppercase(),
        token
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect(),
    ];
    for spelling in &spellings {
        let ask = call(port, "GET", &format!("/m/{spelling}"), None, &[]);
        assert_eq!(ask.status, 200, "{}", ask.body);
        let r = call(
            port,
            "POST",
            &format!("/m/{spelling}/number"),
            None,
            &[("csrf", &ask.csrf())],
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    // Recorded before each answer: one code, however the link was spelled.
    let codes = sb.run(&["sms", "list"]).ok().json_lines();
    assert_eq!(codes.len(), 1, "{codes:?}");
    daemon.stop();
}
