//! The SMTP state machine driven through an in-memory stream: no sockets, a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::crypto::ReplyToken;
use crate::inbound::smtp::budget::DataBudget;
use crate::net::slots::Slot;
use crate::store::Store;
use crate::store::testing::{self, TestStore};

struct World {
    store: Store,
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    reply_to: String,
    thread: crate::domain::ThreadId,
}

async fn world(max_bytes: usize, read_timeout: Duration) -> World {
    let TestStore {
        store,
        keyring: ring,
        dir,
        ..
    } = testing::open().await;
    let posted = testing::clinic_thread(&store, "B").await;
    let jane = testing::jane(&store, posted.thread_id).await;
    let token = ReplyToken::issue(
        &ring,
        posted.thread_id,
        jane,
        crate::clock::Clock::system().now(),
    );
    let pipeline = Pipeline::new(
        store.clone(),
        "reply.example.test",
        "mx.example.test",
        30,
        Arc::new(Notify::new()),
        Arc::new(crate::inbound::auth::Checker::off()),
    );
    World {
        store,
        _dir: dir,
        reply_to: token.address("reply.example.test"),
        thread: posted.thread_id,
        shared: Arc::new(Shared {
            params: SessionParams {
                hostname: "mx.example.test".into(),
                max_message_bytes: max_bytes,
                max_report_bytes: 4096,
                max_recipients: 3,
                max_errors: 5,
                ehlo_timeout: read_timeout,
                command_timeout: read_timeout,
                min_data_rate: 1024,
                data_grace: read_timeout,
                max_duration: Duration::from_secs(60),
                tls: None,
            },
            pipeline,
            budget: DataBudget::new(16 << 20),
        }),
    }
}

/// The client's side of a conversation.
struct Client {
    io: DuplexStream,
    pending: Vec<u8>,
}

impl Client {
    fn start(w: &World, shutdown: CancellationToken) -> Client {
        let (client, server) = tokio::io::duplex(64 * 1024);
        tokio::spawn(serve(
            server,
            std::net::Ipv4Addr::LOCALHOST.into(),
            w.shared.clone(),
            shutdown,
            Slot::detached(),
        ));
        Client {
            io: client,
            pending: Vec::new(),
        }
    }

    /// Reads one complete reply (through its last line, `NNN text`).
    async fn reply(&mut self) -> String {
        loop {
            let text = String::from_utf8_lossy(&self.pending).to_string();
            let mut end = 0;
            for line in text.split_inclusive("\r\n") {
                end += line.len();
                if line.len() >= 4 && line.ends_with("\r\n") && line.as_bytes()[3] == b' ' {
                    self.pending.drain(..end);
                    return text[..end].to_owned();
                }
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut buf))
                .await
                .expect("a reply within 10 s")
                .unwrap();
            if n == 0 {
                return String::from_utf8_lossy(&std::mem::take(&mut self.pending)).to_string();
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
    }

    /// Sends a command and checks the reply code.
    async fn cmd(&mut self, line: &str, code: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        let r = self.reply().await;
        assert!(r.starts_with(code), "{line} -> {r}");
        r
    }

    /// A session past its greeting and EHLO.
    async fn greeted(w: &World) -> Client {
        let mut c = Client::start(w, CancellationToken::new());
        c.reply().await;
        c.cmd("EHLO client.test", "250").await;
        c
    }

    /// MAIL from Jane, RCPT to her reply address, DATA: ready for the message.
    async fn envelope(&mut self, w: &World) {
        self.cmd("MAIL FROM:<jane@example.test>", "250").await;
        self.cmd(&format!("RCPT TO:<{}>", w.reply_to), "250").await;
        self.cmd("DATA", "354").await;
    }
}

fn reply_body(to: &str, id: &str, text: &str) -> String {
    format!(
        "From: jane@example.test\r\nTo: {to}\r\nMessage-ID: <{id}>\r\nSubject: Re: S\r\n\r\n{text}\r\n.\r\n"
    )
}

#[tokio::test]
async fn a_whole_conversation() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::start(&w, CancellationToken::new());
    assert!(c.reply().await.starts_with("220 mx.example.test"));
    let ehlo = c.cmd("EHLO client.test", "250").await;
    for ext in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "SIZE 1048576",
    ] {
        assert!(ehlo.contains(ext), "{ext} in {ehlo}");
    }
    assert!(
        !ehlo.contains("STARTTLS"),
        "no STARTTLS without a certificate"
    );
    c.cmd("STARTTLS", "502").await;
    c.cmd("MAIL FROM:<jane@example.test>", "250").await;
    c.cmd("MAIL FROM:<jane@example.test>", "503").await;
    c.cmd(&format!("RCPT TO:<{}>", w.reply_to), "250").await;
    c.cmd("DATA", "354").await;
    // Dot-stuffing: a line that starts with a dot arrives with one dot fewer.
    c.send(reply_body(&w.reply_to, "a@x", "Line one\r\n..hidden dot\r\nLine three").as_bytes())
        .await;
    assert!(c.reply().await.starts_with("250 2.0.0 Filed"));
    c.cmd("QUIT", "221").await;
    let view = w.store.thread(w.thread).await.unwrap();
    assert_eq!(view.messages[1].body, "Line one\n.hidden dot\nLine three");
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.send(
        format!(
            "MAIL FROM:<jane@example.test>\r\nRCPT TO:<nobody@reply.example.test>\r\nRCPT TO:<{}>\r\nDATA\r\n",
            w.reply_to
        )
        .as_bytes(),
    )
    .await;
    for code in ["250", "550", "250", "354"] {
        let r = c.reply().await;
        assert!(r.starts_with(code), "expected {code}, got {r}");
    }
    c.send(reply_body(&w.reply_to, "p@x", "pipelined").as_bytes())
        .await;
    assert!(c.reply().await.starts_with("250"));
}

#[tokio::test]
async fn oversized_message_is_refused_and_the_session_goes_on() {
    let w = world(2048, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "big@x", &"x".repeat(10_000)).as_bytes())
        .await;
    assert!(c.reply().await.starts_with("552 5.3.4"));
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "small@x", "small").as_bytes())
        .await;
    assert!(c.reply().await.starts_with("250"));
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 2);
}

#[tokio::test]
async fn limits_recipients_and_errors() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.cmd("MAIL FROM:<jane@example.test>", "250").await;
    for _ in 0..3 {
        c.cmd(&format!("RCPT TO:<{}>", w.reply_to), "250").await;
    }
    c.cmd(&format!("RCPT TO:<{}>", w.reply_to), "452").await;
    c.cmd("RSET", "250").await;
    for _ in 0..5 {
        c.cmd("XYZZY", "500").await;
    }
    c.send(b"XYZZY\r\n").await;
    assert!(c.reply().await.starts_with("500"));
    let r = c.reply().await;
    assert!(r.starts_with("421 4.7.0"), "{r}");
}

#[tokio::test]
async fn shutdown_and_timeouts_answer_421() {
    let w = world(1 << 20, Duration::from_millis(300)).await;
    let stop = CancellationToken::new();
    let mut c = Client::start(&w, stop.clone());
    c.reply().await;
    c.cmd("EHLO client.test", "250").await;
    stop.cancel();
    assert!(c.reply().await.starts_with("421 4.3.0"));

    let mut idle = Client::start(&w, CancellationToken::new());
    idle.reply().await;
    // Say nothing: the read timeout closes the session politely.
    assert!(idle.reply().await.starts_with("421 4.4.2"));
}

#[tokio::test]
async fn storage_failure_answers_451_so_the_sender_retries() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    // The database goes away between RCPT and the end of DATA.
    w.store.close().await;
    c.send(reply_body(&w.reply_to, "lost@x", "must not be acknowledged").as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
}

/// The commit itself fails for a moment (another process holds the database's write lock;
/// the reads before it work): 451, nothing filed; once the lock is gone, the retry is filed.
#[tokio::test]
async fn a_commit_that_cannot_happen_now_answers_451_and_files_nothing() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let other = rusqlite::Connection::open(w._dir.path().join("db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "locked@x", "must not be acknowledged yet").as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 1);
    other.execute_batch("ROLLBACK").unwrap();
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "locked@x", "must not be acknowledged yet").as_bytes())
        .await;
    assert!(c.reply().await.starts_with("250"));
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 2);
}

/// The commit fails in a way no retry can mend (here a constraint that refuses the row): the
/// message is held for review, not answered 451 for days; nothing is filed.
#[tokio::test]
async fn a_commit_that_fails_for_good_holds_the_message() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    testing::break_filing(&w.store).await;
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "broken@x", "kept, not filed").as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250 2.0.0 Accepted for review"), "{r}");
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 1);
    let held = w.store.held_list(None).await.unwrap();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].reason, crate::domain::HoldReason::ProcessingFailed);
}

/// Regression: a client sending one byte at a time kept its session as long as each byte came
/// within the read timeout (a byte every 100 s held a slot for 30 minutes). The whole command
/// is due within the command timeout, however it trickles in.
#[tokio::test]
async fn a_trickling_command_is_cut_off_at_the_command_deadline() {
    let w = world(1 << 20, Duration::from_millis(600)).await;
    let mut c = Client::greeted(&w).await;
    let mut closed = None;
    for b in b"MAIL FROM:<jane@example.test>".repeat(4) {
        if c.io.write_all(&[b]).await.is_err() {
            closed = Some(c.reply().await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), c.io.read(&mut buf)).await
        {
            closed = Some(String::from_utf8_lossy(&buf[..n]).to_string());
            break;
        }
    }
    // Cut off while the command was still trickling in: a server that waited for the whole
    // line would have answered it (250) after all 116 bytes, and the loop would have ended
    // without the server closing.
    let reply = closed.expect("the server gave up on the command");
    assert!(reply.starts_with("421 4.4.2"), "{reply}");
}

/// The first EHLO is due within the greeting deadline, whatever else the client says first.
#[tokio::test]
async fn ehlo_is_due_soon_after_the_greeting() {
    let w = world(1 << 20, Duration::from_millis(500)).await;
    let mut c = Client::start(&w, CancellationToken::new());
    c.reply().await;
    c.cmd("NOOP", "250").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.cmd("NOOP", "250").await;
    let r = c.reply().await;
    assert!(r.starts_with("421 4.4.2"), "{r}");
}

/// A message that stops arriving at the minimum rate after the grace is cut off, and
/// nothing of it is filed.
#[tokio::test]
async fn a_message_trickling_below_the_minimum_rate_is_cut_off() {
    let w = world(1 << 20, Duration::from_millis(700)).await;
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    let body = reply_body(&w.reply_to, "slow@x", "slow");
    let mut reply = None;
    for b in body.as_bytes() {
        c.send(&[*b]).await;
        tokio::time::sleep(Duration::from_millis(40)).await;
        let mut buf = [0u8; 256];
        if let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(1), c.io.read(&mut buf)).await
        {
            reply = Some(String::from_utf8_lossy(&buf[..n]).to_string());
            break;
        }
    }
    let reply = reply.expect("cut off before the message ended");
    assert!(
        reply.starts_with("421 4.4.2 Data transfer too slow"),
        "{reply}"
    );
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 1);
}

/// Mail for postmaster (or a bounce address) is a report, never a reply: a much smaller size
/// limit applies; the same size to a reply address is fine.
#[tokio::test]
async fn reports_have_a_small_size_limit() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.cmd("MAIL FROM:<someone@example.test>", "250").await;
    c.cmd("RCPT TO:<postmaster@reply.example.test>", "250")
        .await;
    c.cmd("DATA", "354").await;
    let big = "x".repeat(8000);
    c.send(reply_body("postmaster@reply.example.test", "pm@x", &big).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("552 5.3.4"), "{r}");
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "big-reply@x", &big).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250"), "{r}");
}

/// The bytes all sessions buffer share one budget: over it, a message is answered 452 (try
/// later), never kept in memory; once the budget is back, the same message is taken.
#[tokio::test]
async fn the_shared_data_budget_answers_452_not_out_of_memory() {
    let mut w = world(1 << 20, Duration::from_secs(30)).await;
    {
        let shared = Arc::get_mut(&mut w.shared).expect("not shared yet");
        shared.budget = DataBudget::new(2 * super::super::budget::CHUNK as u64);
    }
    // Another session holds most of the budget.
    let mut hog = crate::inbound::smtp::budget::Drawn::default();
    assert!(w.shared.budget.cover(&mut hog, super::super::budget::CHUNK));
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    let big = "y".repeat(100_000);
    c.send(reply_body(&w.reply_to, "budget@x", &big).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("452 4.3.1"), "{r}");
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 1);
    drop(hog);
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "budget@x", &big).as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("250"), "{r}");
    assert_eq!(w.shared.budget.available(), 2 * super::super::budget::CHUNK);
}

/// A store error while checking RCPT TO is a temporary failure (451), never the permanent 550
/// that would make the sender give the reply up.
#[tokio::test]
async fn the_database_away_at_rcpt_answers_451() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    let mut c = Client::greeted(&w).await;
    c.cmd("MAIL FROM:<jane@example.test>", "250").await;
    w.store.close().await;
    c.cmd(&format!("RCPT TO:<{}>", w.reply_to), "451 4.3.0")
        .await;
}
