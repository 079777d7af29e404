//! Backup and restore against the real daemon: a backup taken while a client floods it with
//! replies over SMTP is consistent; restored into a new place, every reply acknowledged
//! before the backup began is there and readable, and reply tokens issued before still work.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{
    Daemon, Sandbox, client_reply, messages, notification_to, reply_flood, smtp_send, wait_for,
};

#[test]
fn a_backup_during_a_flood_restores_every_acknowledged_reply() {
    const N: usize = 2000;
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, "jane@example.test");
    let (reply_to, _) = client_reply(&notification, "jane@example.test", "", "unused@x.test");

    let acks = sb.dir.path().join("acks");
    let mut client = reply_flood(&sb, &reply_to, N, 4, &acks);
    let acked = || -> HashSet<String> {
        std::fs::read_to_string(&acks)
            .unwrap_or_default()
            .lines()
            .map(|k| format!("Reply number {}", k.trim()))
            .collect()
    };
    wait_for(Duration::from_secs(120), || {
        (acked().len() >= 300).then_some(())
    })
    .expect("the client makes progress");

    // The backup, taken while replies keep arriving.
    let before = acked();
    let dir = sb.dir.path().join("backup");
    let made = sb
        .run(&["backup", "--to", dir.to_str().unwrap()])
        .ok()
        .json();
    let after = acked();
    assert!(after.len() < N, "the backup was taken during the flood");
    assert!(made["contents"]["messages"].as_i64().unwrap() as usize > before.len());
    assert_eq!(made["keyring"], false);
    assert!(
        !dir.join("keyring").exists(),
        "no keyring without --with-keyring"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("sealpost.db"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A backup never goes over another.
    let again = sb.run(&["backup", "--to", dir.to_str().unwrap()]);
    assert_ne!(again.status, 0);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    let status = wait_for(Duration::from_secs(600), || client.try_wait().unwrap())
        .expect("the client finishes");
    assert!(status.success());
    daemon.stop();
    assert_eq!(messages(&sb, &thread).len(), N + 1);

    // Verified with the keyring: every thread and person opens.
    let verified = sb
        .run(&["backup", "verify", dir.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(verified["threads"], 1);
    assert_eq!(verified["failures"].as_array().unwrap().len(), 0);

    // Restored into a new installation with the same keyring.
    let restored = Sandbox::new("");
    std::fs::create_dir_all(restored.data_dir()).unwrap();
    std::fs::copy(sb.keyring_path(), restored.keyring_path()).unwrap();
    std::fs::set_permissions(
        restored.keyring_path(),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = restored
        .run(&["restore", "--from", dir.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(out["keyring_restored"], false);
    // Never over a database that is there.
    let twice = restored.run(&["restore", "--from", dir.to_str().unwrap()]);
    assert_ne!(twice.status, 0);
    assert!(twice.stderr.contains("exists"), "{}", twice.stderr);

    let bodies: HashSet<String> = messages(&restored, &thread)
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<_> = before.difference(&bodies).collect();
    assert!(
        missing.is_empty(),
        "acknowledged before the backup, not restored: {missing:?}"
    );

    // A reply token issued before the backup still files a reply into the restored copy.
    let daemon = Daemon::start(&restored, &[]);
    let (to, raw) = client_reply(
        &notification,
        "jane@example.test",
        "Sent after the restore.",
        "after-restore@mail.example.test",
    );
    let sent = smtp_send(restored.smtp_port, "jane@example.test", &[&to], &raw, None);
    assert_eq!(sent["data"][0], 250, "{sent}");
    daemon.stop();
    assert!(
        messages(&restored, &thread)
            .iter()
            .any(|m| m["body"] == "Sent after the restore.")
    );
}

#[test]
fn a_backup_with_its_keyring_restores_into_an_empty_machine() {
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("secure", "Referral", "We have sent your referral.");
    let dir = sb.dir.path().join("backup");
    let r = sb.run(&["backup", "--to", dir.to_str().unwrap(), "--with-keyring"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("whoever holds this backup"),
        "{}",
        r.stderr
    );
    assert!(dir.join("keyring").exists());

    // Damaged: refused.
    let damaged = sb.dir.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    for f in ["manifest.json", "sealpost.db", "keyring"] {
        std::fs::copy(dir.join(f), damaged.join(f)).unwrap();
    }
    let mut db = std::fs::read(damaged.join("sealpost.db")).unwrap();
    let at = db.len() / 2;
    db[at] ^= 0xff;
    std::fs::write(damaged.join("sealpost.db"), db).unwrap();
    let fresh = Sandbox::new("");
    let r = fresh.run(&["restore", "--from", damaged.to_str().unwrap()]);
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);

    let out = fresh
        .run(&["restore", "--from", dir.to_str().unwrap()])
        .ok()
        .json();
    assert_eq!(out["keyring_restored"], true);
    let shown = fresh.run(&["thread", "show", &thread]).ok().json();
    assert_eq!(shown["messages"][0]["body"], "We have sent your referral.");

    // Another keyring cannot open it.
    let stranger = Sandbox::with_keyring("");
    let r = stranger.run(&["backup", "verify", dir.to_str().unwrap()]);
    assert_ne!(r.status, 0, "{}", r.stdout);
}
