//! `sealpost serve` as systemd runs it: readiness, watchdog, SIGTERM, first-start keyring, logs;
//! and the promise that no body or subject is ever written to the database in plaintext.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use common::{Manager, Sandbox, files_below, start, stop};

#[test]
fn first_start_ready_and_graceful_stop() {
    let sb = Sandbox::new("");
    let mgr = Manager::new();
    let child = start(&sb, &mgr, &[]);
    mgr.expect("READY=1");
    // The keyring exists, private, before the daemon says it is ready.
    let mode = std::fs::metadata(sb.keyring_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(sb.data_dir())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert!(sb.data_dir().join("spool").is_dir());
    let out = stop(child, &mgr);
    assert!(out.stderr.contains("back it up"), "{}", out.stderr);

    // A second start reuses the keyring and says nothing about generating one.
    let child = start(&sb, &mgr, &[]);
    mgr.expect("READY=1");
    let out = stop(child, &mgr);
    assert!(
        !out.stderr.contains("generated a new keyring"),
        "{}",
        out.stderr
    );
}

#[test]
fn watchdog_keepalives() {
    let sb = Sandbox::new("");
    let mgr = Manager::new();
    let child = start(&sb, &mgr, &[("WATCHDOG_USEC", "200000")]);
    mgr.expect("READY=1");
    mgr.expect("WATCHDOG=1");
    mgr.expect("WATCHDOG=1");
    stop(child, &mgr);
}

#[test]
fn log_formats() {
    let sb = Sandbox::new("");
    let mgr = Manager::new();
    // Under journald: no timestamps (the journal adds its own).
    let child = start(&sb, &mgr, &[("JOURNAL_STREAM", "8:12345")]);
    mgr.expect("READY=1");
    let out = stop(child, &mgr);
    let ready = out
        .stderr
        .lines()
        .find(|l| l.contains("sealpost is ready"))
        .unwrap();
    assert!(
        ready.starts_with(" INFO") || ready.starts_with("INFO"),
        "{ready}"
    );

    let log = sb.dir.path().join("json.log");
    let mut c = sb.command(&["serve", "--log-format", "json"]);
    c.env("NOTIFY_SOCKET", &mgr.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()));
    let child = c.spawn().unwrap();
    mgr.expect("READY=1");
    stop(child, &mgr);
    let out = common::Run {
        status: 0,
        stdout: String::new(),
        stderr: std::fs::read_to_string(&log).unwrap(),
    };
    let mut messages = Vec::new();
    for line in out.stderr.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert!(v["level"].is_string() && v["message"].is_string(), "{line}");
        messages.push(v["message"].as_str().unwrap().to_owned());
    }
    // Lines were checked, not an empty log: a run logs its start and its orderly end.
    assert!(
        messages.len() >= 2,
        "too few JSON lines to check: {}",
        out.stderr
    );
    assert!(
        messages.iter().any(|m| m.contains("ready")),
        "no ready line in {messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("stopp")),
        "no line about stopping in {messages:?}"
    );
}

/// Searches `hay` for `needle`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_plaintext_in_any_database_file() {
    let sb = Sandbox::new("");
    let mgr = Manager::new();
    // The daemon holds the database open, so the write-ahead log stays on disk to be searched.
    let child = start(&sb, &mgr, &[]);
    mgr.expect("READY=1");

    let mut secrets = Vec::new();
    for i in 0..5 {
        let subject = format!("Biopsy result {i} Zebrafinch{i:04}");
        let body =
            format!("Dear Jane, the margins are clear Quokka{i:04}. Grüße aus Zürich, 東京 {i}");
        let thread = sb.new_thread(
            if i % 2 == 0 { "secure" } else { "convenience" },
            &subject,
            &body,
        );
        let reply = format!("Merci docteur, très rassurant Pangolin{i:04}");
        sb.run_with_stdin(
            &["thread", "post", &thread, "--from", "jane@example.test"],
            &reply,
        )
        .ok();
        secrets.extend([subject, body, reply]);
    }
    // Display names are personal data too (they were stored in clear).
    let named = sb
        .run_with_stdin(
            &[
                "thread",
                "new",
                "--from",
                "Dr Wombat Okonkwo <lee@clinic.example.test>",
                "--to",
                "Jane Axolotl-Doe <jane@example.test>",
                "--subject",
                "Names",
            ],
            "Hello.",
        )
        .ok()
        .json();
    secrets.extend(["Wombat Okonkwo".to_owned(), "Axolotl-Doe".to_owned()]);
    let shown = sb
        .run(&["thread", "show", named["thread_id"].as_str().unwrap()])
        .ok()
        .json();
    assert_eq!(shown["participants"][0]["name"], "Dr Wombat Okonkwo");
    // Sanity: the store really holds them (so the scan below is looking for the right bytes).
    let listed = sb.run(&["thread", "list"]).ok().stdout;
    assert!(listed.contains("Zebrafinch0003"));

    let scan = |when: &str| {
        let files = files_below(&sb.data_dir());
        let db_files: Vec<_> = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("sealpost.db")
            })
            .collect();
        assert!(!db_files.is_empty());
        // Control: addresses are stored in clear (they route mail), so a working scan finds one.
        assert!(
            files
                .iter()
                .any(|f| contains(&std::fs::read(f).unwrap(), b"jane@example.test")),
            "{when}: the scan cannot see plaintext columns"
        );
        for f in &db_files {
            let bytes = std::fs::read(f).unwrap();
            for s in &secrets {
                // Whole strings, and distinctive fragments of them.
                for needle in
                    std::iter::once(s.as_str()).chain(s.split(' ').filter(|w| w.len() >= 8))
                {
                    assert!(
                        !contains(&bytes, needle.as_bytes()),
                        "{when}: '{needle}' found in plaintext in {}",
                        f.display()
                    );
                }
            }
        }
        db_files.len()
    };
    let wal = sb.data_dir().join("sealpost.db-wal");
    assert!(
        std::fs::metadata(&wal)
            .map(|m| m.len() > 0)
            .unwrap_or(false),
        "the write-ahead log should exist while the daemon runs"
    );
    scan("while running");
    stop(child, &mgr);
    scan("after shutdown");
    // A clean stop closes every connection, the last one folding the log into the database.
    assert!(
        !wal.exists(),
        "the write-ahead log is left behind after a clean stop"
    );
}

/// A value from the configuration that cannot be used when the daemon starts — a TLS key that
/// is not a key, a relay password file gone missing between loading and starting — is a
/// configuration error like one that does not parse: exit status 64, the key named.
#[test]
fn unusable_values_found_at_start_exit_64_naming_the_key() {
    let sb = Sandbox::new("");
    let junk = sb.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let sb = Sandbox::new(&format!(
        "tls_cert = \"{0}\"\ntls_key = \"{0}\"\n",
        junk.display()
    ));
    let out = sb.run(&["serve"]);
    assert_eq!(out.status, 64, "{}", out.stderr);
    assert!(out.stderr.contains("smtp.tls_cert"), "{}", out.stderr);
    assert!(
        out.stderr.contains("invalid configuration"),
        "{}",
        out.stderr
    );
}
