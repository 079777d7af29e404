//! The administration CLI, run as a real binary against a real SQLite file.

use crate::common;

use common::Sandbox;
use sealpost::crypto::{Keyring, ReplyToken};
use sealpost::domain::{ParticipantId, ThreadId};

#[test]
fn new_post_show_list() {
    let sb = Sandbox::with_keyring("");
    let out = sb
        .run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "Dr Lee <Lee@Clinic.Example.TEST>",
                "--to",
                "jane@example.test",
                "--to",
                "Tom <tom@example.test>",
                "--shared",
                "--subject",
                "Lab results",
            ],
            "Hello Jane,\r\nyour results are in.\r\n",
        )
        .ok()
        .json();
    let thread = out["thread_id"].as_str().unwrap().to_owned();
    let first = out["message_id"].as_str().unwrap().to_owned();
    assert_eq!(thread.len(), 16);

    let body = sb.dir.path().join("reply.txt");
    std::fs::write(&body, "Thank you, Dr Lee.\n").unwrap();
    let posted = sb
        .run(&[
            "thread",
            "post",
            &thread,
            "--from",
            "JANE@example.test",
            "--body-file",
            body.to_str().unwrap(),
        ])
        .ok()
        .json();
    let second = posted["message_id"].as_str().unwrap().to_owned();

    let show = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(show["thread_id"], thread.as_str());
    assert_eq!(show["subject"], "Lab results");
    assert_eq!(show["mode"], "secure", "policy.default_mode applies");
    let participants = show["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 3);
    assert_eq!(participants[0]["address"], "lee@clinic.example.test");
    assert_eq!(participants[0]["role"], "staff");
    assert!(participants[1..].iter().all(|p| p["role"] == "recipient"));
    let messages = show["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["message_id"], first.as_str());
    assert_eq!(messages[0]["body"], "Hello Jane,\nyour results are in.");
    assert_eq!(messages[0]["from"], "lee@clinic.example.test");
    assert_eq!(messages[0]["via"], "cli");
    assert_eq!(messages[1]["message_id"], second.as_str());
    assert_eq!(messages[1]["body"], "Thank you, Dr Lee.");
    assert_eq!(messages[1]["from"], "jane@example.test");
    assert!(messages[1]["created_at"].as_str().unwrap().ends_with('Z'));

    let other = sb.new_thread("convenience", "Invoice", "Your invoice is attached.");
    let list = sb.run(&["thread", "list"]).ok().json_lines();
    assert_eq!(list.len(), 2);
    let find = |id: &str| list.iter().find(|t| t["thread_id"] == id).unwrap().clone();
    let a = find(&thread);
    assert_eq!(a["subject"], "Lab results");
    assert_eq!(a["participants"], 3);
    assert_eq!(a["messages"], 2);
    let b = find(&other);
    assert_eq!(b["mode"], "convenience");
    assert_eq!(b["messages"], 1);
    assert!(b["last_activity"].is_string());
}

fn assert_fails(run: common::Run, needle: &str) {
    assert_ne!(run.status, 0, "expected failure, stdout: {}", run.stdout);
    assert_ne!(run.status, 64, "not a configuration error: {}", run.stderr);
    assert!(run.stdout.is_empty(), "nothing on stdout: {}", run.stdout);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr: {}", run.stderr);
    assert!(lines[0].contains(needle), "'{needle}' in: {}", lines[0]);
}

#[test]
fn errors_are_one_clear_line() {
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("secure", "S", "B");
    assert_fails(
        sb.run(&["thread", "show", "00000000000000ff"]),
        "no thread 00000000000000ff",
    );
    assert_fails(sb.run(&["thread", "show", "not-an-id"]), "not a thread id");
    assert_fails(
        sb.post(&thread, "mallory@evil.test", "hi"),
        "mallory@evil.test is not a participant",
    );
    assert_fails(
        sb.post(&thread, "lee@clinic.example.test", "  \n\n"),
        "the message body is empty",
    );
    assert_fails(
        sb.run(&[
            "thread",
            "post",
            &thread,
            "--from",
            "lee@clinic.example.test",
            "--body-file",
            "/nonexistent/body.txt",
        ]),
        "cannot read body file /nonexistent/body.txt",
    );
    assert_fails(
        sb.run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "lee@clinic.example.test",
                "--to",
                "lee@clinic.example.test",
                "--subject",
                "x",
            ],
            "body",
        ),
        "named more than once",
    );
    assert_fails(
        sb.run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "nobody",
                "--to",
                "a@b.test",
                "--subject",
                "x",
            ],
            "body",
        ),
        "not a mailbox",
    );
    // Nothing from the failed commands reached the database.
    let show = sb.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(show["messages"].as_array().unwrap().len(), 1);
    assert_eq!(sb.run(&["thread", "list"]).ok().json_lines().len(), 1);
}

#[test]
fn commands_without_a_keyring_say_how_to_make_one() {
    let sb = Sandbox::new("");
    assert_fails(sb.run(&["thread", "list"]), "sealpost keygen");
}

/// A command of the binary: its words, the arguments its usage line requires (filled with
/// placeholder values), and whether it runs on its own (`thread` alone only prints help).
struct CliCommand {
    words: Vec<String>,
    required: Vec<String>,
    runs: bool,
}

/// Every command the binary has, found by walking its own help from the top (so a command
/// added later is covered without touching a list).
fn every_command() -> Vec<CliCommand> {
    fn help(words: &[String]) -> String {
        let out = std::process::Command::new(common::binary())
            .args(words)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{words:?} --help");
        String::from_utf8(out.stdout).unwrap()
    }
    fn walk(words: Vec<String>, found: &mut Vec<CliCommand>) {
        let text = help(&words);
        let usage = text
            .lines()
            .find_map(|l| l.strip_prefix("Usage: "))
            .unwrap_or_else(|| panic!("{words:?}: no usage line in {text}"));
        // `sealpost thread post [OPTIONS] --from <ADDR> <THREAD_ID>`: what it requires.
        let mut required = Vec::new();
        let mut optional_depth = 0;
        for w in usage.split_whitespace().skip(1 + words.len()) {
            optional_depth += w.matches('[').count();
            let inside = optional_depth > 0;
            optional_depth -= w.matches(']').count();
            if inside || w == "<COMMAND>" {
                continue;
            }
            if w.starts_with("--") {
                required.push(w.to_owned());
            } else if w.starts_with('<') {
                required.push(placeholder(w));
            }
        }
        if !words.is_empty() {
            found.push(CliCommand {
                words: words.clone(),
                runs: !usage.contains("<COMMAND>") || !required.is_empty(),
                required,
            });
        }
        let mut in_commands = false;
        for line in text.lines() {
            if line == "Commands:" {
                in_commands = true;
                continue;
            }
            if in_commands {
                let Some(name) = line
                    .strip_prefix("  ")
                    .and_then(|l| l.split_whitespace().next())
                else {
                    break;
                };
                if name != "help" {
                    let mut next = words.clone();
                    next.push(name.to_owned());
                    walk(next, found);
                }
            }
        }
    }
    /// A value of the right shape for an argument, by its name.
    fn placeholder(arg: &str) -> String {
        match arg.trim_matches(|c| c == '<' || c == '>' || c == '.') {
            "ADDR" | "ADDRESS" => "jane@example.test",
            "THREAD_ID" | "THREAD" | "ID" | "WEBHOOK_ID" | "KEY_ID" => "00000000000000aa",
            "DIR" => "/nonexistent/backup",
            "FILE" => "/nonexistent/file",
            "NAME" => "Name",
            _ => "x",
        }
        .to_owned()
    }
    let mut found = Vec::new();
    walk(Vec::new(), &mut found);
    found
}

/// A configuration that does not load stops every command before it does anything: exit 64,
/// one line naming the setting.
#[test]
fn invalid_configuration_exits_64_for_every_command() {
    let sb = Sandbox::new("max_message_bytes = \"lots\"\n");
    let commands = every_command();
    assert!(commands.iter().filter(|c| c.runs).count() >= 38);
    for c in commands.iter().filter(|c| c.runs) {
        let args: Vec<&str> = c
            .words
            .iter()
            .chain(&c.required)
            .map(String::as_str)
            .collect();
        let run = sb.run(&args);
        assert_eq!(run.status, 64, "{args:?}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("smtp.max_message_bytes"),
            "{args:?}: {}",
            run.stderr
        );
    }

    let good = Sandbox::with_keyring("");
    let mut c = good.command(&["thread", "list"]);
    c.env("SEALPOST_SMTP__LISTEN", "not-an-address");
    let run: common::Run = c.output().unwrap().into();
    assert_eq!(run.status, 64);
    assert!(
        run.stderr.contains("smtp.listen") && run.stderr.contains("SEALPOST_SMTP__LISTEN"),
        "{}",
        run.stderr
    );

    let mut c = good.command(&["thread", "list"]);
    c.env("SEALPOST_SMTP__NO_SUCH_KEY", "1");
    let run: common::Run = c.output().unwrap().into();
    assert_eq!(run.status, 64);
    assert!(run.stderr.contains("smtp.no_such_key"), "{}", run.stderr);

    let mut c = std::process::Command::new(common::binary());
    c.args(["check-config"])
        .env("SEALPOST_CONFIG", "/nonexistent/sealpost.toml");
    let run: common::Run = c.output().unwrap().into();
    assert_eq!(run.status, 64);
    assert!(run.stderr.contains("SEALPOST_CONFIG"), "{}", run.stderr);
}

#[test]
fn config_option_is_global() {
    let sb = Sandbox::with_keyring("");
    let run: common::Run = std::process::Command::new(common::binary())
        .args(["thread", "list", "--config"])
        .arg(&sb.config)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.status, 0, "{}", run.stderr);
}

#[test]
fn check_config_prints_the_effective_settings() {
    let sb = Sandbox::new("[database]\nurl = \"sqlite:///tmp/never-opened.db\"\n");
    let mut c = sb.command(&["check-config"]);
    c.env("SEALPOST_POLICY__TOKEN_TTL_DAYS", "9");
    let run: common::Run = c.output().unwrap().into();
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("configuration is valid"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("token_ttl_days = 9"), "{}", run.stdout);
    assert!(run.stdout.contains("reply_domain = \"reply.example.test\""));
    assert!(run.stdout.contains("keyring") && run.stdout.contains("missing"));
}

#[test]
fn keygen_creates_once_and_rotates() {
    use std::os::unix::fs::PermissionsExt;
    let sb = Sandbox::new("");
    let first = sb.run(&["keygen"]).ok().json();
    assert_eq!(first["current_key_id"], 1);
    let mode = std::fs::metadata(sb.keyring_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let again = sb.run(&["keygen"]);
    assert_ne!(again.status, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    let before = Keyring::load(&sb.keyring_path()).unwrap();
    let old = ReplyToken::issue(
        &before,
        ThreadId(7),
        ParticipantId(9),
        sealpost::clock::Clock::system().now(),
    );
    let rotated = sb.run(&["keygen", "--rotate"]).ok().json();
    assert_eq!(rotated["current_key_id"], 2);
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2);
    // a token signed before the rotation still verifies
    let inspect = sb.run(&["token", "inspect", old.as_str()]).ok().json();
    assert_eq!(inspect["valid"], true, "{inspect}");
    assert_eq!(inspect["key_id"], 1);
}

#[test]
fn token_inspect() {
    let sb = Sandbox::with_keyring("[policy]\ntoken_ttl_days = 30\n");
    let ring = Keyring::load(&sb.keyring_path()).unwrap();
    let now = sealpost::clock::Clock::system().now();
    let t = ReplyToken::issue(&ring, ThreadId(0x1234), ParticipantId(0x5678), now);

    let v = sb.run(&["token", "inspect", t.as_str()]).ok().json();
    assert_eq!(v["valid"], true);
    assert!(v["reason"].is_null());
    assert_eq!(v["key_id"], 1);
    assert_eq!(v["thread_id"], "0000000000001234");
    assert_eq!(v["participant"], "0000000000005678");
    assert!(v["issued_at"].is_string() && v["expires_at"].is_string());

    // The address form, upper-cased as some servers do.
    let addr = t.address("reply.example.test").to_uppercase();
    let v = sb.run(&["token", "inspect", &addr]).ok().json();
    assert_eq!(v["valid"], true);

    let expired = ReplyToken::issue(&ring, ThreadId(1), ParticipantId(2), now - 31 * 86_400);
    let v = sb.run(&["token", "inspect", expired.as_str()]).ok().json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "expired");
    assert_eq!(v["thread_id"], "0000000000000001");

    let mut forged: Vec<u8> = t.as_str().bytes().collect();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'a' { b'b' } else { b'a' };
    let v = sb
        .run(&["token", "inspect", std::str::from_utf8(&forged).unwrap()])
        .ok()
        .json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["reason"], "bad-mac");
    assert!(
        v["thread_id"].is_null(),
        "a forged token's claims are not shown"
    );

    let mut two = Keyring::generate();
    two.rotate();
    let unknown = ReplyToken::issue(&two, ThreadId(1), ParticipantId(2), now);
    let v = sb.run(&["token", "inspect", unknown.as_str()]).ok().json();
    assert_eq!(v["reason"], "unknown-key");
    assert_eq!(v["key_id"], 2);

    let v = sb.run(&["token", "inspect", "hello"]).ok().json();
    assert_eq!(v["reason"], "malformed");

    let run = sb.run(&["token", "inspect", "jane@example.test"]);
    assert_ne!(run.status, 0);
    assert!(run.stderr.contains("not a reply address"), "{}", run.stderr);
}

/// Every command, found by walking the help from the top, has help of its own.
#[test]
fn help_on_every_command() {
    let commands = every_command();
    assert!(commands.len() >= 45, "{}", commands.len());
    for CliCommand { words, .. } in commands {
        let out = std::process::Command::new(common::binary())
            .args(&words)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{words:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage"), "{words:?}");
        assert!(
            text.lines().next().is_some_and(|l| !l.is_empty()),
            "{words:?}: no description"
        );
    }
}

/// Convenience mode reaches only the recipients who consented; the others in the same thread
/// get secure notifications, and withdrawing consent turns what is still queued secure.
#[test]
fn consent_decides_who_gets_content() {
    let sb = Sandbox::with_keyring("");
    let none = sb.run(&["person", "show", "tom@example.test"]);
    assert_fails(none, "not in the directory");
    assert_fails(
        sb.run(&[
            "person",
            "consent",
            "tom@example.test",
            "--convenience",
            "maybe",
        ]),
        "--convenience maybe: expected yes or no",
    );
    let jane = sb
        .run(&[
            "person",
            "consent",
            "Jane@Example.TEST",
            "--convenience",
            "yes",
            "--by",
            "reception",
        ])
        .ok()
        .json();
    assert_eq!(jane["address"], "jane@example.test");
    assert_eq!(jane["convenience"], true);
    assert_eq!(jane["convenience_by"], "cli:reception");
    assert!(
        jane["convenience_text"]
            .as_str()
            .unwrap()
            .contains("not fully protected"),
        "the standard warning is recorded: {jane}"
    );
    assert!(jane["convenience_at"].as_str().unwrap().ends_with('Z'));

    let thread = sb
        .run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "lee@clinic.example.test",
                "--to",
                "jane@example.test",
                "--to",
                "tom@example.test",
                "--shared",
                "--subject",
                "Lab results",
                "--mode",
                "convenience",
            ],
            "Your results are in.",
        )
        .ok()
        .json()["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let modes = |sb: &Sandbox| -> Vec<(String, String, String)> {
        let mut rows: Vec<_> = sb
            .run(&["outbox", "list", "--thread", &thread])
            .ok()
            .json_lines()
            .iter()
            .map(|r| {
                (
                    r["recipient"].as_str().unwrap().to_owned(),
                    r["mode"].as_str().unwrap().to_owned(),
                    r["created_at"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let first = modes(&sb);
    let pairs: Vec<(&str, &str)> = first
        .iter()
        .map(|(r, m, _)| (r.as_str(), m.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("jane@example.test", "convenience"),
            ("tom@example.test", "secure")
        ],
        "Tom never consented"
    );
    let show = sb.run(&["thread", "show", &thread]).ok().json();
    let content: Vec<(&str, bool)> = show["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["address"].as_str().unwrap(),
                p["content_by_email"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        content,
        vec![
            ("lee@clinic.example.test", true),
            ("jane@example.test", true),
            ("tom@example.test", false)
        ]
    );

    // Tom agrees: the next message reaches him with content.
    sb.run(&[
        "person",
        "consent",
        "tom@example.test",
        "--convenience",
        "yes",
        "--text",
        "Told on the phone that email is not fully protected.",
        "--by",
        "reception",
    ])
    .ok();
    sb.post(&thread, "lee@clinic.example.test", "One more thing.")
        .ok();
    let rows = modes(&sb);
    let toms: Vec<&str> = rows
        .iter()
        .filter(|(r, _, _)| r == "tom@example.test")
        .map(|(_, m, _)| m.as_str())
        .collect();
    assert!(toms.contains(&"convenience"), "{rows:?}");

    // Jane withdraws: her notifications still in the queue (no daemon runs) go secure.
    let jane = sb
        .run(&[
            "person",
            "consent",
            "jane@example.test",
            "--convenience",
            "no",
            "--by",
            "jane-by-phone",
        ])
        .ok()
        .json();
    assert_eq!(jane["convenience"], false);
    let rows = modes(&sb);
    assert!(
        rows.iter()
            .filter(|(r, _, _)| r == "jane@example.test")
            .all(|(_, m, _)| m == "secure"),
        "{rows:?}"
    );
}

/// The directory: add, show, update, list, remove; personal data sealed in the database;
/// someone who opted out of notifications gets none (recorded as suppressed).
#[test]
fn people_directory() {
    let sb = Sandbox::with_keyring("");
    let jane = sb
        .run(&[
            "person",
            "add",
            "Jane@Example.TEST",
            "--name",
            "Jane Doe",
            "--birth-date",
            "1984-03-07",
            "--mobile",
            "+49 151 1234 5678",
        ])
        .ok()
        .json();
    assert_eq!(jane["address"], "jane@example.test");
    assert_eq!(jane["kind"], "patient");
    assert_eq!(jane["name"], "Jane Doe");
    assert_eq!(jane["birth_date"], "1984-03-07");
    assert_eq!(jane["mobile"], "+4915112345678");
    assert_eq!(jane["notifications"], true);
    assert_eq!(jane["status"], "registered");
    assert_eq!(jane["person_id"].as_str().unwrap().len(), 16);

    assert_fails(
        sb.run(&["person", "add", "jane@example.test"]),
        "already in the directory; use `person update`",
    );
    assert_fails(
        sb.run(&["person", "update", "nobody@example.test", "--name", "X"]),
        "not in the directory; use `person add`",
    );
    assert_fails(
        sb.run(&[
            "person",
            "add",
            "kim@example.test",
            "--birth-date",
            "1984-02-30",
        ]),
        "is not a date such as",
    );
    assert_fails(
        sb.run(&["person", "add", "kim@example.test", "--mobile", "0151 1234"]),
        "not a number in international form",
    );
    assert_fails(
        sb.run(&["person", "add", "kim@example.test", "--name", "Kim\u{202e}"]),
        "plain text",
    );
    assert_fails(
        sb.run(&[
            "person",
            "add",
            "lee@clinic.example.test",
            "--kind",
            "staff",
            "--birth-date",
            "1970-01-01",
        ]),
        "a date of birth is kept only for people of kind patient",
    );
    let lee = sb
        .run(&[
            "person",
            "add",
            "lee@clinic.example.test",
            "--kind",
            "staff",
            "--title",
            "Dr",
            "--name",
            "Dr Lee",
        ])
        .ok()
        .json();
    assert_eq!(lee["title"], "Dr");

    // Update keeps what is not named, and "" clears.
    let jane = sb
        .run(&[
            "person",
            "update",
            "jane@example.test",
            "--notifications",
            "off",
            "--mobile",
            "",
        ])
        .ok()
        .json();
    assert_eq!(jane["notifications"], false);
    assert_eq!(jane["mobile"], serde_json::Value::Null);
    assert_eq!(jane["name"], "Jane Doe");
    assert_eq!(jane["birth_date"], "1984-03-07");

    // A thread: Tom becomes a person by taking part; Jane opted out, so hers is suppressed.
    let thread = sb
        .run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "lee@clinic.example.test",
                "--to",
                "jane@example.test",
                "--to",
                "tom@example.test",
                "--shared",
                "--subject",
                "Lab results",
            ],
            "Your results are in.",
        )
        .ok()
        .json()["thread_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rows = sb
        .run(&["outbox", "list", "--thread", &thread])
        .ok()
        .json_lines();
    let status = |who: &str| {
        rows.iter()
            .find(|r| r["recipient"] == who)
            .unwrap_or_else(|| panic!("no row for {who}: {rows:?}"))["status"]
            .clone()
    };
    assert_eq!(status("jane@example.test"), "suppressed");
    assert_eq!(status("tom@example.test"), "queued");
    let people = sb.run(&["person", "list"]).ok().json_lines();
    let addresses: Vec<&str> = people
        .iter()
        .map(|p| p["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        vec![
            "jane@example.test",
            "lee@clinic.example.test",
            "tom@example.test"
        ]
    );
    let staff = sb
        .run(&["person", "list", "--kind", "staff"])
        .ok()
        .json_lines();
    assert_eq!(staff.len(), 1);

    // Personal data never reaches the database file in clear.
    let stored = common::stored_bytes(&sb);
    let stored = String::from_utf8_lossy(&stored);
    for secret in ["Jane Doe", "1984-03-07", "4915112345678", "Dr Lee"] {
        assert!(!stored.contains(secret), "{secret} is in the database file");
    }

    // Removal: refused while a participant, done once they are not.
    assert_fails(
        sb.run(&["person", "remove", "tom@example.test"]),
        "is a participant of 1 thread(s)",
    );
    sb.run(&[
        "thread",
        "remove-participant",
        &thread,
        "--address",
        "tom@example.test",
    ])
    .ok();
    sb.run(&["person", "remove", "tom@example.test"]).ok();
    assert_fails(
        sb.run(&["person", "show", "tom@example.test"]),
        "not in the directory",
    );
}
