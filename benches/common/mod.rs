//! Shared pieces of the benchmarks: external tools and timing. Installations, ports and the
//! daemon come from the integration tests' harness, which the benchmarks reuse.
#![allow(dead_code)]

#[path = "../../tests/common/mod.rs"]
pub mod harness;

pub use harness::free_port;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Finds an external program (Postfix's tools live in /usr/sbin) or exits with a clear message.
pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    eprintln!(
        "benchmark needs `{name}` (Debian package {package}); `bash scripts/test.sh` installs it"
    );
    std::process::exit(1);
}

pub fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "port {port} never opened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Postfix's smtp-sink on `port`, discarding everything; killed on drop.
pub struct Sink(Child);

impl Sink {
    pub fn start(port: u16) -> Sink {
        let mut c = Command::new(tool("smtp-sink", "postfix"));
        if is_root() {
            c.args(["-u", "nobody"]);
        }
        let child = c
            .args(["-m", "1024", &format!("127.0.0.1:{port}"), "1024"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        wait_port(port);
        Sink(child)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a command to completion and returns how long it took.
pub fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .expect("run benchmark command");
    assert!(status.success(), "{cmd:?} failed");
    start.elapsed()
}

/// The first non-flag argument as a number (cargo bench adds `--bench`).
pub fn count_arg(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}
