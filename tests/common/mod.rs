//! The test harness: a private data directory, a configuration file, and the real `sealpost`
//! binary run against them.
#![allow(dead_code)]

pub mod dns;
pub mod http;
pub mod receiver;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throwaway installation: its own data directory and configuration file.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The port of the daemon's SMTP listener on 127.0.0.1.
    pub smtp_port: u16,
    /// Where `sealpost serve` serves the HTTP API (unless the test configured `[api]`).
    pub api_port: u16,
    /// Where it serves the web view (unless the test configured `[web]`).
    pub web_port: u16,
}

/// What a finished command printed.
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Each stdout line parsed as JSON.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// The only stdout line, as JSON.
    pub fn json(&self) -> Value {
        let mut v = self.json_lines();
        assert_eq!(v.len(), 1, "expected one JSON line, got: {}", self.stdout);
        v.remove(0)
    }

    /// Asserts success and returns self.
    pub fn ok(self) -> Run {
        assert_eq!(self.status, 0, "command failed: {}", self.stderr);
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_sealpost")
}

impl Sandbox {
    /// A sandbox whose configuration has `extra` appended (TOML).
    ///
    /// Unless `extra` has an `[auth]` section, sender authentication is off: these tests send
    /// from 127.0.0.1 as made-up domains that publish nothing. tests/auth.rs checks it, with
    /// its own DNS server.
    pub fn new(extra: &str) -> Sandbox {
        let auth_off = if extra.contains("[auth]") {
            ""
        } else {
            "\n[auth]\npolicy = \"off\"\n"
        };
        // The API listens on a port of its own, unless `extra` says where.
        let api_port = free_port();
        let api = if extra.contains("[api]") {
            String::new()
        } else {
            format!("\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n")
        };
        // And so does the web view.
        let web_port = free_port();
        let web = if extra.contains("[web]") {
            String::new()
        } else {
            format!("\n[web]\nlisten = \"127.0.0.1:{web_port}\"\n")
        };
        let extra = format!("{extra}{auth_off}{api}{web}");
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("sealpost.toml");
        let data = dir.path().join("data");
        let smtp_port = free_port();
        std::fs::write(
            &config,
            format!(
                "[general]\ndata_dir = \"{}\"\norganization = \"Lee Family Practice\"\npublic_url = \"https://portal.example.test\"\n\n[smtp]\nreply_domain = \"reply.example.test\"\nhostname = \"mx.example.test\"\nlisten = \"127.0.0.1:{smtp_port}\"\n{extra}",
                data.display()
            ),
        )
        .expect("write config");
        Sandbox {
            dir,
            config,
            smtp_port,
            api_port,
            web_port,
        }
    }

    /// A sandbox with a keyring already made.
    pub fn with_keyring(extra: &str) -> Sandbox {
        let s = Sandbox::new(extra);
        s.run(&["keygen"]).ok();
        s
    }

    /// What the daemon of this sandbox logged so far (for a failing test's message).
    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn keyring_path(&self) -> PathBuf {
        self.data_dir().join("keyring.json")
    }

    /// A command for the binary with this sandbox's configuration and a clean environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(binary());
        c.arg("--config").arg(&self.config).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("SEALPOST_") || k == "NOTIFY_SOCKET" || k == "JOURNAL_STREAM" {
                c.env_remove(k);
            }
        }
        c.env_remove("RUST_LOG");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn sealpost");
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            input.write_all(stdin.as_bytes()).unwrap();
        }
        child.wait_with_output().expect("wait for sealpost").into()
    }

    /// `thread post THREAD --from FROM` with `body` on standard input.
    pub fn post(&self, thread: &str, from: &str, body: &str) -> Run {
        self.run_with_stdin(&["thread", "post", thread, "--from", from], body)
    }

    /// Records that `address` agreed to convenience mode (`person consent`).
    pub fn consent(&self, address: &str) {
        self.run(&[
            "person",
            "consent",
            address,
            "--convenience",
            "yes",
            "--by",
            "test",
        ])
        .ok();
    }

    /// Opens a thread from Dr Lee to Jane (who consented to convenience mode, when `mode` is
    /// convenience) and returns its id.
    pub fn new_thread(&self, mode: &str, subject: &str, body: &str) -> String {
        if mode == "convenience" {
            self.consent("jane@example.test");
        }
        let out = self
            .run_with_stdin(
                &[
                    "thread",
                    "new",
                    "--from",
                    "Dr Lee <lee@clinic.example.test>",
                    "--to",
                    "jane@example.test",
                    "--subject",
                    subject,
                    "--mode",
                    mode,
                ],
                body,
            )
            .ok()
            .json();
        out["thread_id"].as_str().unwrap().to_owned()
    }
}

/// Sends a signal to a child with the `kill` command (the crate forbids unsafe code).
pub fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success());
}

/// Polls `f` until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every regular file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A fake service manager: the datagram socket systemd would pass in `NOTIFY_SOCKET`.
pub struct Manager {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Default for Manager {
    fn default() -> Manager {
        Manager::new()
    }
}

impl Manager {
    pub fn new() -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Manager {
            socket,
            _dir: dir,
            path,
        }
    }

    /// One datagram, if one arrives before `deadline`. A signal delivered to the test process
    /// (any child's exit, with a handler some in-process daemon installed) interrupts a read
    /// with a timeout instead of restarting it: such a read is simply made again.
    fn recv_before(&self, deadline: Instant, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let left = deadline
                .checked_duration_since(Instant::now())
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))?;
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.socket.recv(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other,
            }
        }
    }

    /// How many datagrams containing `state` arrive within `window`.
    pub fn count_within(&self, state: &str, window: Duration) -> usize {
        let end = Instant::now() + window;
        let mut buf = [0u8; 4096];
        let mut n = 0;
        while let Ok(len) = self.recv_before(end, &mut buf) {
            let msg = String::from_utf8_lossy(&buf[..len]);
            n += usize::from(msg.lines().any(|l| l == state));
        }
        n
    }

    /// Reads datagrams until one contains `state`; the error when 30 seconds pass.
    pub fn wait_for(&self, state: &str) -> std::io::Result<()> {
        let end = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 4096];
        loop {
            let n = self.recv_before(end, &mut buf)?;
            let msg = String::from_utf8_lossy(&buf[..n]);
            if msg.lines().any(|l| l == state) {
                return Ok(());
            }
        }
    }

    /// Reads datagrams until one contains `state`, failing after 30 seconds.
    pub fn expect(&self, state: &str) {
        self.wait_for(state)
            .unwrap_or_else(|e| panic!("no {state} from the daemon: {e}"));
    }
}

/// Starts `sealpost serve` for the sandbox, reporting to `mgr`, with extra environment.
/// Its output goes to a file (a pipe nobody reads would fill up and block the daemon).
pub fn start(sb: &Sandbox, mgr: &Manager, env: &[(&str, &str)]) -> Child {
    start_as(sb, mgr, env, sb.command(&["serve"]))
}

/// Starts `sealpost serve` with at most `nofile` file descriptors (soft and hard: the daemon
/// cannot raise it), as a service with systemd's default limit of 1024 has.
pub fn start_with_nofile(sb: &Sandbox, mgr: &Manager, nofile: u32) -> Child {
    let serve = sb.command(&["serve"]);
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(serve.get_program())
        .args(serve.get_args());
    for (k, v) in serve.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    start_as(sb, mgr, &[], c)
}

fn start_as(sb: &Sandbox, mgr: &Manager, env: &[(&str, &str)], mut c: Command) -> Child {
    let log = sb.dir.path().join("daemon.log");
    let file = std::fs::File::create(&log).expect("create the daemon log");
    c.env("NOTIFY_SOCKET", &mgr.path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file));
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("start sealpost serve");
    LOGS.with(|l| l.borrow_mut().insert(child.id(), log));
    child
}

thread_local! {
    static LOGS: std::cell::RefCell<std::collections::HashMap<u32, PathBuf>> = Default::default();
}

/// SIGTERM, then waits for STOPPING=1 and a clean exit; returns what the daemon printed.
pub fn stop(mut child: Child, mgr: &Manager) -> Run {
    signal(&child, "TERM");
    mgr.expect("STOPPING=1");
    let status = wait_for(Duration::from_secs(40), || child.try_wait().unwrap())
        .expect("the daemon exits after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let log = LOGS.with(|l| l.borrow_mut().remove(&child.id()));
    Run {
        status: status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: log
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .unwrap_or_default(),
    }
}

/// A daemon that is killed (not drained) when dropped, so a failing test leaves nothing behind.
pub struct Daemon {
    pub child: Option<Child>,
    pub mgr: Manager,
}

impl Daemon {
    /// Starts the daemon and waits until it reports READY=1.
    pub fn start(sb: &Sandbox, env: &[(&str, &str)]) -> Daemon {
        let mgr = Manager::new();
        let child = start(sb, &mgr, env);
        Daemon::ready(sb, mgr, child)
    }

    /// Starts the daemon with at most `nofile` file descriptors (see [`start_with_nofile`]).
    pub fn start_with_nofile(sb: &Sandbox, nofile: u32) -> Daemon {
        let mgr = Manager::new();
        let child = start_with_nofile(sb, &mgr, nofile);
        Daemon::ready(sb, mgr, child)
    }

    fn ready(sb: &Sandbox, mgr: Manager, mut child: Child) -> Daemon {
        if let Err(e) = mgr.wait_for("READY=1") {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(sb.dir.path().join("daemon.log")).unwrap_or_default();
            panic!("no READY=1 from the daemon ({e}); it said:\n{log}");
        }
        Daemon {
            child: Some(child),
            mgr,
        }
    }

    /// Graceful stop; returns the daemon's output.
    pub fn stop(mut self) -> Run {
        let child = self.child.take().unwrap();
        stop(child, &self.mgr)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Every byte SQLite keeps for the sandbox's database: the file, its write-ahead log and
/// shared-memory index (recent writes live in the log until a checkpoint), so a check that
/// something is not stored in clear looks where it would be. Panics if the database is not
/// there at all: an empty read must not pass for "not stored".
pub fn stored_bytes(sb: &Sandbox) -> Vec<u8> {
    let mut stored = std::fs::read(sb.data_dir().join("sealpost.db")).expect("the database file");
    assert!(!stored.is_empty(), "the database file is empty");
    for entry in std::fs::read_dir(sb.data_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("sealpost.db-") {
            stored.extend(std::fs::read(&path).unwrap_or_default());
        }
    }
    stored
}

/// A port on 127.0.0.1 that was free a moment ago, for a server to listen on.
///
/// Chosen below the kernel's range of ephemeral ports (32768 and up): a port from that range
/// can be taken, between this call and the server's bind, by any client's outgoing connection
/// (curl, the daemon's own SMTP client) — with many tests running at once, that happened.
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    for attempt in 0..1000u64 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000
            + ((seed ^ std::process::id() as u64).wrapping_add(n * 7919 + attempt) % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// A self-signed certificate for localhost / 127.0.0.1, made with openssl: (cert, key).
pub fn self_signed_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // An end-entity certificate: webpki refuses a CA certificate as a server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl is required (Debian package: openssl)");
    assert!(status.success(), "openssl could not make a certificate");
    (cert, key)
}

/// Our SMTP peer (tests/peers/smtp_peer.py on aiosmtpd), stopped when dropped.
pub struct SmtpPeer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl SmtpPeer {
    pub fn start(dir: &Path, extra: &[&str]) -> SmtpPeer {
        SmtpPeer::start_on(dir, free_port(), extra)
    }

    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> SmtpPeer {
        use std::io::BufRead;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_peer.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 is required to run the SMTP peer");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "the SMTP peer did not start (is aiosmtpd installed? `pip install aiosmtpd`)"
        );
        SmtpPeer {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    /// The peer's index: one JSON object per received message.
    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("index.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The raw bytes of message `file` from the index.
    pub fn message(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(file)).unwrap()
    }
}

impl Drop for SmtpPeer {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        if wait_for(Duration::from_secs(5), || {
            self.child.try_wait().ok().flatten()
        })
        .is_none()
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Waits (bounded) until `sealpost outbox list` shows every notification in a final state
/// satisfying `done`, and returns the rows.
pub fn wait_outbox(sb: &Sandbox, limit: Duration, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    let found = wait_for(limit, || {
        last = sb.run(&["outbox", "list"]).ok().json_lines();
        done(&last).then_some(())
    });
    assert!(
        found.is_some(),
        "outbox did not reach the expected state: {last:#?}"
    );
    last
}

/// Everything a reader of a message could see: every header decoded, every part decoded
/// (recursively into attached messages), plus the raw bytes.
pub fn visible_text(raw: &[u8]) -> String {
    let m = mail_parser::MessageParser::default()
        .parse(raw)
        .expect("a parsable message");
    let mut out = String::from_utf8_lossy(raw).into_owned();
    for part in &m.parts {
        for h in &part.headers {
            out.push_str(&format!("\n{:?}: {:?}", h.name, h.value));
        }
        match &part.body {
            mail_parser::PartType::Text(t) | mail_parser::PartType::Html(t) => {
                out.push('\n');
                out.push_str(t)
            }
            mail_parser::PartType::Binary(b) | mail_parser::PartType::InlineBinary(b) => {
                out.push('\n');
                out.push_str(&String::from_utf8_lossy(b))
            }
            mail_parser::PartType::Message(inner) => {
                out.push('\n');
                out.push_str(&visible_text(inner.raw_message()))
            }
            mail_parser::PartType::Multipart(_) => {}
        }
    }
    out
}

/// A few random words from the operating system's generator, ASCII and not.
pub fn random_text(words: usize) -> String {
    const ALPHABET: &[&str] = &[
        "a", "b", "c", "d", "e", "f", "g", "h", "k", "m", "n", "p", "r", "s", "t", "w", "z", "ä",
        "ö", "ü", "ß", "é", "ç", "ñ", "ø", "東", "京", "и", "ж", "😀", "Q", "X", "7", "3",
    ];
    let mut bytes = vec![0u8; words * 12];
    getrandom::fill(&mut bytes).unwrap();
    bytes
        .chunks(12)
        .map(|c| {
            c.iter()
                .map(|b| ALPHABET[*b as usize % ALPHABET.len()])
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends a message with python's smtplib (tests/peers/smtp_send.py) and returns every reply.
pub fn smtp_send(
    port: u16,
    from: &str,
    to: &[&str],
    message: &[u8],
    starttls_ca: Option<&Path>,
) -> Value {
    use std::io::Write;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/smtp_send.py");
    let mut c = Command::new("python3");
    c.arg(script)
        .args(["--port", &port.to_string(), "--from", from]);
    for t in to {
        c.args(["--to", t]);
    }
    if let Some(ca) = starttls_ca {
        c.arg("--starttls").arg("--cafile").arg(ca);
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is required for the SMTP client");
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "smtp client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// tests/peers/reply_flood.py: `count` replies from Jane to `reply_to` over `conns` SMTP
/// connections, each retried until its 250 is seen (as a sending server does); every
/// acknowledged number is appended to `acks` at once.
pub fn reply_flood(sb: &Sandbox, reply_to: &str, count: usize, conns: usize, acks: &Path) -> Child {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/reply_flood.py");
    Command::new("python3")
        .arg(script)
        .args([
            "--port",
            &sb.smtp_port.to_string(),
            "--from",
            "jane@example.test",
            "--to",
            reply_to,
        ])
        .args(["--count", &count.to_string(), "--conns", &conns.to_string()])
        .arg("--acks")
        .arg(acks)
        .args(["--deadline", "600"])
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 is required")
}

/// The spool file of the (latest) notification sent to `recipient`, once it is there.
pub fn notification_to(sb: &Sandbox, recipient: &str) -> Vec<u8> {
    let rows = wait_outbox(sb, Duration::from_secs(60), |rows| {
        rows.iter()
            .any(|r| r["recipient"] == recipient && r["status"] == "sent")
    });
    let row = rows
        .iter()
        .find(|r| r["recipient"] == recipient && r["status"] == "sent")
        .unwrap();
    let path = sb
        .data_dir()
        .join("spool")
        .join(format!("{}.eml", row["notification_id"].as_str().unwrap()));
    std::fs::read(path).unwrap()
}

/// A reply to `notification` as a mail client writes one: Re: subject, In-Reply-To and
/// References, the typed text on top, the notification quoted below an attribution line.
/// The address a notification's Reply-To names (its reply token at the reply domain).
pub fn reply_address(notification: &mail_parser::Message<'_>) -> String {
    notification
        .reply_to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .expect("a Reply-To")
        .to_owned()
}

pub fn client_reply(
    notification: &[u8],
    from: &str,
    typed: &str,
    message_id: &str,
) -> (String, Vec<u8>) {
    let n = mail_parser::MessageParser::default()
        .parse(notification)
        .unwrap();
    let reply_to = reply_address(&n);
    let mid = n.message_id().unwrap();
    let quoted: String = n
        .body_text(0)
        .unwrap()
        .lines()
        .map(|l| {
            if l.is_empty() {
                ">\r\n".to_owned()
            } else {
                format!("> {l}\r\n")
            }
        })
        .collect();
    let raw = format!(
        "From: {from}\r\nTo: {reply_to}\r\nSubject: Re: {}\r\nDate: Sun, 22 Nov 2026 10:00:00 +0100\r\nMessage-ID: <{message_id}>\r\nIn-Reply-To: <{mid}>\r\nReferences: <{mid}>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n\r\nOn Sun, 22 Nov 2026 at 09:00, Lee Family Practice <noreply@example.test> wrote:\r\n{quoted}",
        n.subject().unwrap_or(""),
        typed.replace('\n', "\r\n"),
    );
    (reply_to, raw.into_bytes())
}

/// The path of the secure link (`/m/<token>`) in the latest notification to `recipient`.
pub fn link_path_to(sb: &Sandbox, recipient: &str) -> String {
    let raw = notification_to(sb, recipient);
    let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let at = text
        .find("https://portal.example.test/m/")
        .expect("a link in the notification");
    let rest = &text[at + "https://portal.example.test".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '<' || c == '"' || c == '>')
        .unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The messages of a thread, via `thread show`.
pub fn messages(sb: &Sandbox, thread: &str) -> Vec<Value> {
    sb.run(&["thread", "show", thread]).ok().json()["messages"]
        .as_array()
        .unwrap()
        .clone()
}

/// A throwaway Dovecot (IMAP on 127.0.0.1, plain and implicit TLS), users `sealpost` (the
/// gateway's mailbox) and `jane`, all passwords `pw-<user>`; stopped when dropped.
pub struct Dovecot {
    pub dir: tempfile::TempDir,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub cert: PathBuf,
    conf: PathBuf,
    binary: &'static str,
    child: Option<Child>,
}

impl Dovecot {
    pub fn start() -> Dovecot {
        Dovecot::start_with("")
    }

    /// A Dovecot with extra configuration lines (for example a reduced `imap_capability`).
    pub fn start_with(extra_conf: &str) -> Dovecot {
        use std::os::unix::fs::PermissionsExt;
        let binary = ["/usr/sbin/dovecot", "/usr/bin/dovecot"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("Dovecot is required for the IMAP tests (Debian package dovecot-imapd; scripts/test.sh installs it)");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let (cert, key) = self_signed_cert(root);
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        let id = |flag: &str, user: Option<&str>| {
            let mut c = Command::new("id");
            c.arg(flag);
            if let Some(u) = user {
                c.arg(u);
            }
            String::from_utf8(c.output().unwrap().stdout)
                .unwrap()
                .trim()
                .to_owned()
        };
        let (mail_user, login_user) = if is_root {
            ("dovecot".to_owned(), "dovenull".to_owned())
        } else {
            (id("-un", None), id("-un", None))
        };
        let uid = id("-u", Some(&mail_user));
        let gid = id("-g", Some(&mail_user));
        let group = id("-gn", Some(&mail_user));
        Command::new("chown")
            .arg(format!("{uid}:{gid}"))
            .arg(root.join("mail"))
            .status()
            .unwrap();
        let users: String = ["sealpost", "jane"]
            .iter()
            .map(|u| {
                format!(
                    "{u}:{{PLAIN}}pw-{u}:{uid}:{gid}::{}\n",
                    root.join("mail").join(u).display()
                )
            })
            .collect();
        std::fs::write(root.join("users"), users).unwrap();
        let imap_port = free_port();
        let imaps_port = free_port();
        let no_chroot = if is_root {
            ""
        } else {
            "service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\n"
        };
        let conf = root.join("dovecot.conf");
        std::fs::write(
            &conf,
            format!(
                "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {r}/run\nstate_dir = {r}/state\n\
                 instance_name = sealpost-test-{imap_port}\nlog_path = {r}/dovecot.log\n\
                 default_internal_user = {mail_user}\ndefault_internal_group = {group}\ndefault_login_user = {login_user}\n\
                 first_valid_uid = 1\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
                 ssl = yes\nssl_cert = <{cert}\nssl_key = <{key}\nssl_min_protocol = TLSv1.2\n\
                 mail_location = maildir:~/Maildir\nmail_fsync = never\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/users\n}}\n\
                 userdb {{\n  driver = passwd-file\n  args = username_format=%u {r}/users\n}}\n\
                 protocol imap {{\n  mail_max_userip_connections = 1000\n}}\n\
                 service imap-login {{\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps_port}\n    ssl = yes\n  }}\n}}\n{no_chroot}{extra_conf}\n",
                r = root.display(),
                cert = cert.display(),
                key = key.display(),
            ),
        )
        .unwrap();
        let mut d = Dovecot {
            dir,
            imap_port,
            imaps_port,
            cert,
            conf,
            binary,
            child: None,
        };
        d.run();
        d
    }

    /// Starts the server process (again) and waits for its greeting.
    pub fn run(&mut self) {
        let child = Command::new(self.binary)
            .arg("-F")
            .arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot");
        self.child = Some(child);
        let port = self.imap_port;
        let up = wait_for(Duration::from_secs(20), || {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            let mut buf = [0u8; 64];
            let n = std::io::Read::read(&mut s, &mut buf).ok()?;
            buf[..n].starts_with(b"* OK").then_some(())
        });
        assert!(
            up.is_some(),
            "Dovecot did not start; its log: {}",
            std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
        );
    }

    /// Stops the server process.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            if wait_for(Duration::from_secs(10), || c.try_wait().ok().flatten()).is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // The listening port must be free before a restart.
        let port = self.imap_port;
        wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        });
    }

    /// A logged-in plain-text IMAP connection for the test's own checks.
    pub fn client(&self, user: &str) -> ImapClient {
        let s = std::net::TcpStream::connect(("127.0.0.1", self.imap_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut c = ImapClient {
            reader: std::io::BufReader::new(s.try_clone().unwrap()),
            writer: s,
            tag: 0,
        };
        let mut greeting = String::new();
        std::io::BufRead::read_line(&mut c.reader, &mut greeting).unwrap();
        c.command(&format!("LOGIN {user} pw-{user}"));
        c
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A minimal blocking IMAP client: enough to APPEND and to count messages.
pub struct ImapClient {
    reader: std::io::BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
    tag: u32,
}

impl ImapClient {
    /// Runs a command; returns its untagged lines; panics unless it ends in OK.
    pub fn command(&mut self, cmd: &str) -> Vec<String> {
        use std::io::{BufRead, Write};
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.writer
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(!line.is_empty(), "IMAP connection closed during {cmd}");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{cmd} -> {line}");
                return lines;
            }
            lines.push(line);
        }
    }

    pub fn append(&mut self, mailbox: &str, raw: &[u8]) {
        use std::io::{BufRead, Write};
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.writer
            .write_all(format!("{tag} APPEND \"{mailbox}\" {{{}}}\r\n", raw.len()).as_bytes())
            .unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with('+'), "APPEND not accepted: {line}");
        self.writer.write_all(raw).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.starts_with(&tag) {
                assert!(line.contains("OK"), "APPEND failed: {line}");
                return;
            }
        }
    }

    /// Messages in a mailbox (0 when it does not exist yet).
    pub fn count(&mut self, mailbox: &str) -> u32 {
        use std::io::{BufRead, Write};
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.writer
            .write_all(format!("{tag} STATUS \"{mailbox}\" (MESSAGES)\r\n").as_bytes())
            .unwrap();
        let mut count = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if let Some(i) = line.find("MESSAGES ") {
                count = line[i + 9..]
                    .trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .unwrap_or(0);
            }
            if line.starts_with(&tag) {
                return count;
            }
        }
    }
}

/// Jane's mail client, s-nail: opens `mailbox` (an mbox file or an imap:// URL), replies to its
/// first message with `text`, and sends the reply through `mta` (an smtp:// URL, or a program
/// that takes the message on stdin like sendmail). `extra` adds settings (`-S…`).
pub fn snail_reply(mailbox: &str, mta: &str, extra: &[String], text: &str) {
    use std::io::Write;
    let mut child = Command::new("s-nail")
        .args([
            "-n",
            "-#",
            "-Sv15-compat",
            "-Ssmtp-auth=none",
            "-Simap-auth=login",
        ])
        .args([
            "-Shostname=example.test",
            "-Squote",
            "-Sfrom=Jane Doe <jane@example.test>",
        ])
        .args([
            "-Sindentprefix=> ",
            "-Sreply-to-honour=yes",
            "-Sttycharset=utf-8",
        ])
        .args(["-Sescape=~", "-Snosave", "-SDEAD=/dev/null"])
        .arg(format!("-Smta={mta}"))
        .args(extra)
        .arg("-f")
        .arg(mailbox)
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("s-nail is required (Debian package s-nail)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("reply 1\n{text}\n~.\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "s-nail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `sealpost serve` run inside the test process, on a clock the test moves forward (test
/// builds only: release builds have no clock to move, and the benchmarks that share this
/// harness build in release): a link
/// opened a day later, a lock that runs out, a retry that falls due — without sleeping and
/// without a restart. Its log goes to the sandbox's `daemon.log`, through the daemon's own
/// redaction, like the real binary's. Stopped (drained) when dropped.
#[cfg(debug_assertions)]
pub struct InProcess {
    pub clock: sealpost::clock::Clock,
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

#[cfg(debug_assertions)]
impl InProcess {
    /// Binds and starts the daemon for `sb`; returns once every listener is bound.
    pub fn start(sb: &Sandbox) -> InProcess {
        InProcess::start_with_clock(sb, sealpost::clock::Clock::adjustable())
    }

    /// The same, on a clock the test made (to carry time across a restart).
    pub fn start_with_clock(sb: &Sandbox, clock: sealpost::clock::Clock) -> InProcess {
        let settings = sealpost::config::load(Some(&sb.config))
            .expect("the sandbox's configuration loads")
            .settings;
        let stop = tokio_util::sync::CancellationToken::new();
        let log = sb.dir.path().join("daemon.log");
        let file = std::sync::Arc::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .expect("open the daemon log"),
        );
        let dispatch = sealpost::logging::dispatch(
            sealpost::logging::Shape::Journal,
            tracing_subscriber::EnvFilter::new("info"),
            move || file.clone(),
        );
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (c, s) = (clock.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let for_threads = dispatch.clone();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .on_thread_start(move || {
                    // Each of the runtime's threads logs to this daemon's file for its life.
                    std::mem::forget(tracing::dispatcher::set_default(&for_threads));
                })
                .build()
                .expect("a tokio runtime");
            let _guard = tracing::dispatcher::set_default(&dispatch);
            runtime.block_on(async move {
                let app = match sealpost::app::App::bind(settings, c).await {
                    Ok(app) => app,
                    Err(e) => {
                        let _ = bound_tx.send(Err(e.to_string()));
                        return Err(e.to_string());
                    }
                };
                let _ = bound_tx.send(Ok(()));
                app.run(s.cancelled_owned())
                    .await
                    .map_err(|e| e.to_string())
            })
        });
        match bound_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the daemon did not start: {e}"),
            Err(_) => panic!("the daemon's thread ended before binding"),
        }
        InProcess {
            clock,
            stop,
            thread: Some(thread),
        }
    }

    /// Moves the daemon's clock forward.
    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    /// A store of its own on the daemon's database, reading the daemon's clock (for tests
    /// that look at what the daemon did), and a runtime to use it on.
    pub fn store(&self, sb: &Sandbox) -> (tokio::runtime::Runtime, sealpost::store::Store) {
        let settings = sealpost::config::load(Some(&sb.config))
            .expect("the sandbox's configuration loads")
            .settings;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let keyring = sealpost::crypto::Keyring::load(&settings.keys.path).expect("the keyring");
        let store = runtime
            .block_on(sealpost::store::Store::open(
                &settings.database.url,
                std::sync::Arc::new(keyring),
                self.clock.clone(),
            ))
            .expect("the store opens beside the daemon");
        (runtime, store)
    }

    /// Drains and stops the daemon; panics if it failed.
    pub fn stop(mut self) {
        self.stop.cancel();
        let result = self
            .thread
            .take()
            .unwrap()
            .join()
            .expect("the daemon's thread");
        result.expect("the daemon stopped cleanly");
    }
}

#[cfg(debug_assertions)]
impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
