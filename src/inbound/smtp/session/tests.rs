//! The SMTP state machine driven through an in-memory stream: no sockets, a real SQLite store.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::crypto::ReplyToken;
use crate::inbound::committer::Committer;
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
    } = testing::open().await;
    let posted = testing::clinic_thread(&store, "B").await;
    let jane = testing::jane(&store, posted.thread_id).await;
    let token = ReplyToken::issue(&ring, posted.thread_id, jane, crate::clock::now());
    let pipeline = Pipeline::new(
        store.clone(),
        ring,
        Committer::start(store.clone()).unwrap().0,
        "reply.example.test",
        "mx.example.test",
        30,
        Arc::new(Notify::new()),
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
                max_recipients: 3,
                max_errors: 5,
                read_timeout,
                max_duration: Duration::from_secs(60),
                tls: None,
            },
            pipeline,
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
        tokio::spawn(serve(server, w.shared.clone(), shutdown));
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

/// The commit itself fails (the reads before it work): 451, and nothing is filed.
#[tokio::test]
async fn a_failed_commit_answers_451_and_files_nothing() {
    let w = world(1 << 20, Duration::from_secs(30)).await;
    testing::break_filing(&w.store).await;
    let mut c = Client::greeted(&w).await;
    c.envelope(&w).await;
    c.send(reply_body(&w.reply_to, "broken@x", "must not be acknowledged").as_bytes())
        .await;
    let r = c.reply().await;
    assert!(r.starts_with("451 4.3.0"), "{r}");
    assert_eq!(w.store.thread(w.thread).await.unwrap().messages.len(), 1);
}
