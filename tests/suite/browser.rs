//! The secure web view in a real browser: Debian's chromium, driven through chromium-driver
//! (WebDriver) by fantoccini. A recipient opens the link from a spooled secure notification,
//! gets the date of birth wrong twice, then right, reads, replies, and the practice's
//! notification is queued. Three wrong answers lock the person out for a while, or until
//! staff unlock them; archive, re-open and cancel are clicked; a form stripped of its
//! anti-forgery token is refused. A link opened a day later asks for the mobile number and a code
//! sent through a fake Twilio (a real HTTP server) first. Screenshots of the conversation and the inbox at 360 and 1280 px
//! wide are saved under `target/tmp/screenshots/` for a person to look at.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::receiver::Receiver;
use common::{Daemon, Sandbox, free_port, notification_to, wait_for, wait_outbox};
use fantoccini::{Client, ClientBuilder, Locator};

const JANE: &str = "jane@example.test";

/// chromedriver on a port of its own, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let path = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect(
                "chromedriver is required for the browser tests (Debian packages chromium and \
                 chromium-driver; `bash scripts/test.sh` installs them)",
            );
        let port = free_port();
        let child = Command::new(path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(drop)
        })
        .expect("chromedriver listens");
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--lang=en-US",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session through chromedriver")
}

/// The token of the link in a spooled notification.
fn link_token(raw: &[u8]) -> String {
    let message = mail_parser::MessageParser::default().parse(raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let at = text.find("/m/").expect("a link");
    text[at + 3..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The runtime a test drives the browser from.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Saves a screenshot of the page at `width` px wide.
async fn screenshot(c: &Client, width: u32, name: &str) {
    c.set_window_size(width, 900).await.unwrap();
    let png = c.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}-{width}.png")), png).unwrap();
}

/// Types a date of birth into the date field as the directory has it. A date field's typing
/// order depends on the browser's locale, so the value is set the way a date picker sets it.
async fn enter_birth_date(c: &Client, date: &str) {
    c.execute(
        "document.getElementById('birth_date').value = arguments[0];",
        vec![serde_json::json!(date)],
    )
    .await
    .unwrap();
}

async fn body_text(c: &Client) -> String {
    for _ in 0..50 {
        // A page being replaced by the next one answers "stale element": read again.
        if let Ok(main) = c.find(Locator::Css("main")).await
            && let Ok(text) = main.text().await
        {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no page to read");
}

/// The page's text once it contains `needle` (after a click, the next page may take a moment).
async fn text_with(c: &Client, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = body_text(c).await;
        if last.contains(needle) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{needle:?} never shown; the page says: {last}");
}

#[test]
fn a_recipient_signs_in_reads_and_replies_in_chromium() {
    let sb = Sandbox::with_keyring("");
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
    sb.run(&[
        "person",
        "add",
        "lee@clinic.example.test",
        "--kind",
        "staff",
        "--name",
        "Anna Lee",
        "--title",
        "Dr",
    ])
    .ok();
    let thread = sb.new_thread(
        "secure",
        "Biopsy results",
        "Dear Jane,\n\nThe biopsy came back benign. No further treatment is needed.\n\nBest wishes,\nDr Lee",
    );
    let daemon = Daemon::start(&sb, &[]);
    let token = link_token(&notification_to(&sb, JANE));
    let base = format!("http://127.0.0.1:{}", sb.web_port);

    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        assert!(body_text(&c).await.contains("You have a secure message"));
        screenshot(&c, 360, "signin").await;

        for wrong in ["1984-07-03", "1948-03-07"] {
            enter_birth_date(&c, wrong).await;
            c.find(Locator::Css("button[type=submit]"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            text_with(&c, "do not match our records").await;
        }
        text_with(&c, "1 attempt left").await;
        enter_birth_date(&c, "1984-03-07").await;
        c.find(Locator::Css("button[type=submit]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The conversation.
        let shown = text_with(&c, "Biopsy results").await;
        assert!(shown.contains("The biopsy came back benign."), "{shown}");
        assert!(shown.contains("DL Dr Lee"), "{shown}");
        assert_eq!(
            c.current_url().await.unwrap().path(),
            format!("/t/{thread}")
        );
        let cookies = c.get_all_cookies().await.unwrap();
        let session = cookies
            .iter()
            .find(|k| k.name() == "sealpost_session")
            .expect("a session cookie");
        assert_eq!(session.http_only(), Some(true));
        assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
        screenshot(&c, 1280, "conversation").await;
        screenshot(&c, 360, "conversation").await;

        // A reply, typed.
        c.find(Locator::Css("textarea#body"))
            .await
            .unwrap()
            .send_keys("Thank you, that is a relief. See you in March.")
            .await
            .unwrap();
        c.find(Locator::Css("form.reply button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let shown = text_with(&c, "See you in March.").await;
        assert!(shown.contains("Send a follow-up"), "{shown}");
        // Nested under the message it answers.
        let nested = c
            .find(Locator::Css("ol.answers li.message"))
            .await
            .expect("the reply nested under Dr Lee's message");
        assert!(nested.text().await.unwrap().contains("See you in March."));
        screenshot(&c, 360, "replied").await;

        c.goto(&format!("{base}/inbox")).await.unwrap();
        let shown = body_text(&c).await;
        assert!(shown.contains("Biopsy results"), "{shown}");
        screenshot(&c, 1280, "inbox").await;
        screenshot(&c, 360, "inbox").await;
        c.goto(&format!("{base}/new")).await.unwrap();
        text_with(&c, "New message").await;
        screenshot(&c, 360, "new-message").await;

        // Signing out: the conversation is not shown any more.
        c.goto(&format!("{base}/t/{thread}")).await.unwrap();
        c.find(Locator::Css("header form button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        text_with(&c, "You are signed out").await;
        c.goto(&format!("{base}/t/{thread}")).await.unwrap();
        let shown = text_with(&c, "Please sign in again").await;
        assert!(!shown.contains("benign"), "{shown}");
        c.close().await.unwrap();
    });

    // Filed from the web, and Dr Lee's notification is queued.
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    let last = shown["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["via"], "web");
    assert_eq!(
        last["body"],
        "Thank you, that is a relief. See you in March."
    );
    wait_outbox(&sb, Duration::from_secs(20), |rows| {
        rows.iter()
            .any(|r| r["recipient"] == "lee@clinic.example.test" && r["kind"] == "message")
    });
    daemon.stop();
}

/// Clicks the page's (first) submit button.
async fn submit(c: &Client) {
    c.find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[test]
fn a_day_old_link_asks_for_a_code_by_sms_in_chromium() {
    let secrets = tempfile::tempdir().unwrap();
    let token_file = secrets.path().join("twilio-token");
    std::fs::write(&token_file, "tw-token").unwrap();
    let twilio = Receiver::start(
        &secrets.path().join("twilio"),
        free_port(),
        &["--status", "201"],
    );
    let sb = Sandbox::with_keyring(&format!(
        "[sms]\nprovider = \"twilio\"\ntwilio_base_url = \"http://127.0.0.1:{}\"\n\
         twilio_account_sid = \"AC9\"\ntwilio_auth_token_file = \"{}\"\ntwilio_from = \"+15550001111\"\n",
        twilio.port,
        token_file.display()
    ));
    sb.run(&[
        "person",
        "add",
        JANE,
        "--name",
        "Jane Doe",
        "--birth-date",
        "1984-03-07",
        "--mobile",
        "+44 7700 900123",
    ])
    .ok();
    let thread = sb.new_thread("secure", "Test results", "All results are normal.");
    let daemon = common::InProcess::start(&sb);
    let token = link_token(&notification_to(&sb, JANE));
    // Opened a day and an hour later.
    daemon.advance(25 * 3600);
    let base = format!("http://127.0.0.1:{}", sb.web_port);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        text_with(&c, "Your mobile number").await;
        screenshot(&c, 360, "code-number").await;
        c.find(Locator::Css("input#mobile"))
            .await
            .unwrap()
            .send_keys("07700 900123")
            .await
            .unwrap();
        submit(&c).await;
        text_with(&c, "Enter your code").await;
        let sent = wait_for(Duration::from_secs(20), || {
            let r = twilio.received();
            (!r.is_empty()).then_some(r)
        })
        .expect("a text message through the fake Twilio");
        let body = sent[0]["body"].as_str().unwrap().to_owned();
        let at = body.find("code+is+").expect("a code in the message") + 8;
        let code: String = body[at..].chars().take(5).collect();
        screenshot(&c, 360, "code-enter").await;
        c.find(Locator::Css("input#code"))
            .await
            .unwrap()
            .send_keys(&code)
            .await
            .unwrap();
        submit(&c).await;
        text_with(&c, "Your date of birth").await;
        enter_birth_date(&c, "1984-03-07").await;
        submit(&c).await;
        let shown = text_with(&c, "Test results").await;
        assert!(shown.contains("All results are normal."), "{shown}");
        assert_eq!(
            c.current_url().await.unwrap().path(),
            format!("/t/{thread}")
        );
        c.close().await.unwrap();
    });
    daemon.stop();
}

/// Clicks the submit button of the form whose action ends with `action`.
async fn submit_form(c: &Client, action: &str) {
    c.find(Locator::Css(&format!("form[action$='{action}'] button")))
        .await
        .unwrap_or_else(|e| panic!("no form for {action}: {e}"))
        .click()
        .await
        .unwrap();
}

#[test]
fn lockout_archive_reopen_cancel_and_a_forged_form_in_chromium() {
    let sb = Sandbox::with_keyring("");
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
    let thread = sb.new_thread("secure", "Referral", "We have sent your referral.");
    let daemon = Daemon::start(&sb, &[]);
    let token = link_token(&notification_to(&sb, JANE));
    let base = format!("http://127.0.0.1:{}", sb.web_port);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = runtime();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        // Three wrong dates of birth lock Jane out.
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        for wrong in ["1984-07-03", "1948-03-07", "1985-03-07"] {
            text_with(&c, "Your date of birth").await;
            enter_birth_date(&c, wrong).await;
            submit(&c).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let shown = text_with(&c, "Access is locked").await;
        assert!(shown.contains("in about 15 minutes"), "{shown}");
        screenshot(&c, 360, "locked").await;
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        text_with(&c, "Access is locked").await;
        c.close().await.unwrap();
    });
    // Staff can lift the lock at once.
    sb.run(&["person", "unlock", JANE, "--by", "reception"])
        .ok();
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        text_with(&c, "Your date of birth").await;
        enter_birth_date(&c, "1984-03-07").await;
        submit(&c).await;
        text_with(&c, "We have sent your referral.").await;

        // Her message, taken back while nobody has read it.
        c.find(Locator::Css("textarea#body"))
            .await
            .unwrap()
            .send_keys("Sorry, this was meant for someone else.")
            .await
            .unwrap();
        submit_form(&c, "/reply").await;
        text_with(&c, "meant for someone else").await;
        submit_form(&c, "/cancel").await;
        let shown = text_with(&c, "taken back by you").await;
        assert!(!shown.contains("meant for someone else"), "{shown}");
        screenshot(&c, 360, "taken-back").await;

        // Archived (for her only): gone from the inbox, shown under all conversations; moved
        // back.
        submit_form(&c, "/archive").await;
        text_with(&c, "You archived this conversation").await;
        c.goto(&format!("{base}/inbox")).await.unwrap();
        let inbox = text_with(&c, "Show all conversations").await;
        assert!(!inbox.contains("Referral"), "{inbox}");
        c.find(Locator::LinkText("Show all conversations"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        text_with(&c, "Referral").await;
        c.goto(&format!("{base}/t/{thread}")).await.unwrap();
        submit_form(&c, "/reopen").await;
        text_with(&c, "Archive this conversation").await;
        let page = body_text(&c).await;
        assert!(!page.contains("You archived"), "{page}");

        // A form whose anti-forgery token was removed is refused.
        c.execute(
            "document.querySelector(\"form[action$='/reply'] input[name=csrf]\").remove();",
            vec![],
        )
        .await
        .unwrap();
        c.find(Locator::Css("textarea#body"))
            .await
            .unwrap()
            .send_keys("Forged?")
            .await
            .unwrap();
        submit_form(&c, "/reply").await;
        text_with(&c, "This form has expired").await;
        c.close().await.unwrap();
    });
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    let bodies: Vec<&str> = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["We have sent your referral."]);
    assert_eq!(shown["status"], "open");
    daemon.stop();
}

/// Issue 23, path 5, in the browser a patient uses: she types a reply, is away longer than the
/// idle limit (the daemon's clock is moved), presses Send — and her text is still there, on a
/// page that says it was not sent yet and asks who she is; after the check it is sent.
#[test]
fn a_reply_typed_past_the_idle_limit_is_sent_after_the_check_in_chromium() {
    let sb = Sandbox::with_keyring("");
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
    let thread = sb.new_thread("secure", "Blood test", "Please come in fasting on Friday.");
    let daemon = common::InProcess::start(&sb);
    let token = link_token(&notification_to(&sb, JANE));
    let base = format!("http://127.0.0.1:{}", sb.web_port);
    let driver = Driver::start();
    let profile = tempfile::tempdir().unwrap();
    let rt = runtime();
    let text = "Can I drink water before the test?";
    rt.block_on(async {
        let c = browser(&driver, profile.path()).await;
        c.goto(&format!("{base}/m/{token}")).await.unwrap();
        text_with(&c, "Your date of birth").await;
        enter_birth_date(&c, "1984-03-07").await;
        submit(&c).await;
        let shown = text_with(&c, "Please come in fasting").await;
        assert!(shown.contains("signed out after 15 minutes"), "{shown}");
        c.find(Locator::Css("textarea#body"))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
        // Twenty minutes pass before she presses Send.
        daemon.advance(20 * 60);
        submit_form(&c, "/reply").await;
        let shown = text_with(&c, "has not been sent yet").await;
        let kept = c
            .find(Locator::Css("textarea#body"))
            .await
            .unwrap()
            .prop("value")
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some(text), "{shown}");
        screenshot(&c, 360, "resume").await;
        enter_birth_date(&c, "1984-03-07").await;
        submit(&c).await;
        let shown = text_with(&c, text).await;
        assert!(shown.contains("Send a follow-up"), "{shown}");
        c.close().await.unwrap();
    });
    let shown = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["messages"][1]["body"], text);
    daemon.stop();
}
