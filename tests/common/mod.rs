//! The test harness: a private data directory, a configuration file, and the real `sealpost`
//! binary run against them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A throwaway installation: its own data directory and configuration file.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
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
    pub fn new(extra: &str) -> Sandbox {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = dir.path().join("sealpost.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "[general]\ndata_dir = \"{}\"\norganization = \"Lee Family Practice\"\npublic_url = \"https://portal.example.test\"\n\n[smtp]\nreply_domain = \"reply.example.test\"\nhostname = \"mx.example.test\"\n{extra}",
                data.display()
            ),
        )
        .expect("write config");
        Sandbox { dir, config }
    }

    /// A sandbox with a keyring already made.
    pub fn with_keyring(extra: &str) -> Sandbox {
        let s = Sandbox::new(extra);
        s.run(&["keygen"]).ok();
        s
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

    /// Opens a thread through the CLI and returns its id.
    pub fn new_thread(&self, mode: &str, subject: &str, body: &str) -> String {
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
