//! The daemon as a whole: run in-process on an address the kernel picks, supervised, and
//! honest with systemd's watchdog.

use crate::common;

use std::time::Duration;

use common::{Daemon, Manager, Sandbox, notification_to, smtp_send};
use sealpost::app::{App, AppError};
use sealpost::config;

/// Settings for a sandbox, with the SMTP listener on a port the kernel picks.
fn settings(sb: &Sandbox) -> config::Settings {
    let mut settings = config::load(Some(&sb.config)).unwrap().settings;
    settings.smtp.listen = "127.0.0.1:0".parse().unwrap();
    settings
}

/// `App::bind` binds before anything runs, so a test (or an embedding) learns the address
/// instead of racing for a free port; the real daemon then serves on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_runs_in_process_on_a_port_the_kernel_picks() {
    let sb = Sandbox::with_keyring("");
    let app = App::bind(settings(&sb), sealpost::clock::Clock::system())
        .await
        .unwrap();
    let addr = app.smtp_addr().unwrap();
    assert_ne!(addr.port(), 0);
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run(stop.clone().cancelled_owned()));
    let greeting = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 128];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(greeting.starts_with("220 mx.example.test"), "{greeting}");
    stop.cancel();
    running.await.unwrap().unwrap();
}

/// When a critical part stops — here the store's writer thread, which every write goes
/// through — the daemon does not carry on half-alive: it drains and returns the failure, and
/// the process exits non-zero so systemd restarts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_stops_stops_the_daemon_with_an_error() {
    let sb = Sandbox::with_keyring("");
    let app = App::bind(settings(&sb), sealpost::clock::Clock::system())
        .await
        .unwrap();
    let store = app.store().clone();
    let running = tokio::spawn(app.run(std::future::pending::<()>()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.close().await;
    let ended = tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("the daemon stops by itself")
        .unwrap();
    match ended {
        Err(AppError::Failed(f)) => assert!(f.part.contains("writer"), "{f}"),
        other => panic!("{other:?}"),
    }
}

/// A write that is stuck (another process holds the database's write lock) stops the watchdog
/// keep-alives, so systemd would restart a daemon that can no longer file anything; they come
/// back once the write goes through.
#[test]
fn a_stuck_write_stops_the_watchdog() {
    let sb = Sandbox::with_keyring("");
    let thread = sb.new_thread("convenience", "Lab results", "Your results are in.");
    let mgr = Manager::new();
    let child = common::start(&sb, &mgr, &[("WATCHDOG_USEC", "1000000")]);
    mgr.expect("READY=1");
    mgr.expect("WATCHDOG=1");
    let notification = notification_to(&sb, "jane@example.test");
    let (to, raw) = common::client_reply(
        &notification,
        "jane@example.test",
        "Written while the database is locked.",
        "stuck@x.test",
    );
    let lock = rusqlite::Connection::open(sb.data_dir().join("sealpost.db")).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    // The reply waits for the lock (up to ten seconds), and the watchdog hears nothing.
    let sender = std::thread::spawn({
        let port = sb.smtp_port;
        move || smtp_send(port, "jane@example.test", &[&to], &raw, None)
    });
    // The daemon says when it stops the keep-alives; from then on none comes (the window
    // is well inside the writer's ten-second wait for the lock).
    common::wait_for(Duration::from_secs(8), || {
        sb.daemon_log()
            .contains("a database write is stuck; not telling the watchdog all is well")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the daemon never noticed:\n{}", sb.daemon_log()));
    let _ = mgr.count_within("WATCHDOG=1", Duration::from_millis(100));
    let while_stuck = mgr.count_within("WATCHDOG=1", Duration::from_secs(1));
    lock.execute_batch("ROLLBACK").unwrap();
    let answer = sender.join().unwrap();
    assert!(while_stuck == 0, "{while_stuck} keep-alives while stuck");
    // And they come back.
    mgr.expect("WATCHDOG=1");
    // The reply was asked to come again (451) or filed once the lock went.
    let code = answer["data"][0].as_i64().unwrap();
    assert!(code == 451 || code == 250, "{answer}");
    let daemon = Daemon {
        child: Some(child),
        mgr,
    };
    let _ = thread;
    daemon.stop();
}

/// The scheduled jobs of `store` of kind housekeeping: (key, due, status, attempts).
fn housekeeping(
    rt: &tokio::runtime::Runtime,
    store: &sealpost::store::Store,
) -> Vec<(String, i64, String, i64)> {
    rt.block_on(store.scheduled_jobs(Some(sealpost::domain::schedule::JobKind::Housekeeping)))
        .unwrap()
        .into_iter()
        .map(|j| (j.key, j.due_at, j.status, j.attempts))
        .collect()
}

/// The slot a freshly started daemon queued: waits for it (the scheduler plans at start).
fn planned_slot(rt: &tokio::runtime::Runtime, store: &sealpost::store::Store) -> (String, i64) {
    common::wait_for(Duration::from_secs(30), || {
        housekeeping(rt, store)
            .into_iter()
            .find(|j| j.2 == "queued")
            .map(|j| (j.0, j.1))
    })
    .expect("the daemon queues the next housekeeping slot at start")
}

/// Time is a parameter: advancing the in-process daemon's clock to a job's due time runs it
/// at once — no sleeping, no restart — and the run queues the next slot.
#[test]
fn the_clock_advanced_in_process_fires_a_due_job() {
    let sb = Sandbox::with_keyring("");
    let daemon = common::InProcess::start(&sb);
    let (rt, store) = daemon.store(&sb);
    let (key, due) = planned_slot(&rt, &store);
    daemon.advance(due - daemon.clock.now());
    let jobs = common::wait_for(Duration::from_secs(30), || {
        let jobs = housekeeping(&rt, &store);
        jobs.iter()
            .any(|j| j.0 == key && j.2 == "done")
            .then_some(jobs)
    })
    .expect("the due job runs when the clock reaches it");
    let next = jobs
        .iter()
        .find(|j| j.2 == "queued")
        .expect("the next slot");
    assert_eq!(next.1, due + 3600);
    daemon.stop();
}

/// A slot that falls due while the daemon is down runs once when it is back — not once per
/// missed slot, and not twice because the restart asks for it again.
#[test]
fn a_scheduled_job_due_during_a_restart_runs_once() {
    let sb = Sandbox::with_keyring("");
    let clock = sealpost::clock::Clock::adjustable();
    let daemon = common::InProcess::start_with_clock(&sb, clock.clone());
    let (rt, store) = daemon.store(&sb);
    let (key, due) = planned_slot(&rt, &store);
    daemon.stop();
    // Down across the due time and two more slots.
    clock.advance(due - clock.now() + 2 * 3600 + 60);
    let daemon = common::InProcess::start_with_clock(&sb, clock.clone());
    let jobs = common::wait_for(Duration::from_secs(30), || {
        let jobs = housekeeping(&rt, &store);
        jobs.iter()
            .any(|j| j.0 == key && j.2 == "done")
            .then_some(jobs)
    })
    .expect("the missed slot runs after the restart");
    daemon.stop();
    let done: Vec<_> = jobs.iter().filter(|j| j.2 == "done").collect();
    assert_eq!(done.len(), 1, "{jobs:?}");
    assert_eq!(done[0].3, 1, "one run: {jobs:?}");
    let queued: Vec<_> = jobs.iter().filter(|j| j.2 == "queued").collect();
    assert_eq!(queued.len(), 1, "{jobs:?}");
    assert_eq!(
        queued[0].1,
        due + 3 * 3600,
        "the slot after now, not the missed ones"
    );
}

/// One data directory, one daemon: a second `serve` on the same directory would take work
/// the first holds, so it refuses to start and says why.
#[test]
fn a_second_daemon_on_the_same_data_directory_refuses_to_start() {
    let sb = Sandbox::with_keyring("");
    let daemon = Daemon::start(&sb, &[]);
    let second = sb.run(&["serve"]);
    assert_ne!(second.status, 0);
    assert!(
        second
            .stderr
            .contains("another Sealpost is running with the data directory"),
        "{}",
        second.stderr
    );
    daemon.stop();
}
