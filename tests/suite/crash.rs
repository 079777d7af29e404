//! Crash safety of the SMTP door: SIGKILL the daemon while a client sends hundreds of replies
//! over several connections; restart it; the client retries what it did not see acknowledged.
//! Every message ends up filed exactly once — and sending them all once more files nothing
//! and holds nothing: a copy of what is filed is a duplicate before it is anything else.

use crate::common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Daemon, Sandbox, client_reply, messages, notification_to, reply_flood, wait_for};

#[test]
fn sigkill_during_a_flood_loses_and_duplicates_nothing() {
    const N: usize = 300;
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let daemon = Daemon::start(&sb, &[]);
    let notification = notification_to(&sb, "jane@example.test");
    let (reply_to, _) = client_reply(&notification, "jane@example.test", "", "unused@x.test");

    let acks = sb.dir.path().join("acks");
    let mut client = reply_flood(&sb, &reply_to, N, 6, &acks);
    let acked = |min: usize| {
        std::fs::read_to_string(&acks)
            .map(|s| s.lines().count() >= min)
            .unwrap_or(false)
    };
    wait_for(Duration::from_secs(120), || acked(60).then_some(()))
        .expect("the client makes progress");
    daemon.kill();
    let acked_before_restart = std::fs::read_to_string(&acks).unwrap().lines().count();
    assert!(
        acked_before_restart < N,
        "the kill came in the middle of the flood"
    );

    let daemon = Daemon::start(&sb, &[]);
    let status = wait_for(Duration::from_secs(240), || client.try_wait().unwrap())
        .expect("the client finishes after the restart");
    assert!(
        status.success(),
        "every message was acknowledged in the end"
    );

    // Issue 23, path 6: resending everything (as a sender whose acknowledgements were lost
    // would) held some already-filed replies as "empty" — their text matched the latest
    // messages of the thread, which were themselves — and wrote to the person about it.
    let again = sb.dir.path().join("acks-again");
    let mut client = reply_flood(&sb, &reply_to, N, 6, &again);
    let status = wait_for(Duration::from_secs(240), || client.try_wait().unwrap())
        .expect("the resend finishes");
    assert!(status.success(), "every copy was acknowledged");
    let held = sb.run(&["held", "list"]).ok().json_lines();
    assert!(
        held.is_empty(),
        "copies of filed replies were held: {held:?}"
    );
    let notices: Vec<_> = sb
        .run(&["outbox", "list"])
        .ok()
        .json_lines()
        .into_iter()
        .filter(|r| r["kind"] != "message")
        .collect();
    assert!(notices.is_empty(), "notices about copies: {notices:?}");
    daemon.stop();

    let msgs = messages(&sb, &thread);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &msgs[1..] {
        *seen
            .entry(m["body"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "filed more than once: {twice:?}");
    for k in 0..N {
        assert_eq!(
            seen.get(&format!("Reply number {k}")),
            Some(&1),
            "reply {k}"
        );
    }
    assert_eq!(msgs.len(), N + 1);
}
