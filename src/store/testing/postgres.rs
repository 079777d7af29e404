//! A real PostgreSQL server for the tests, on 127.0.0.1: the one `POSTGRES_TEST_SERVER`
//! names (`postgres://user@host:port`, as `scripts/test.sh` starts one), or else a cluster of
//! this process's own, started by the same script (`scripts/postgres.sh`) and stopped and
//! removed by a watcher once this process has ended. Each test gets a database of its own.
//!
//! No test skips for want of a server: a machine without PostgreSQL fails here, saying what
//! to install.

use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::OnceLock;

use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;

/// The server's URL, without a database.
fn server() -> &'static str {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let started = SERVER.get_or_init(|| match std::env::var("POSTGRES_TEST_SERVER") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_cluster(),
    });
    match started {
        Ok(url) => url,
        Err(e) => panic!("the tests need a PostgreSQL server and could not start one: {e}"),
    }
}

/// A fresh, empty database on the test server; its URL.
pub(crate) async fn fresh_database() -> String {
    let base = server();
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).expect("random bytes");
    let name = format!("sealpost_test_{:016x}", u64::from_le_bytes(suffix));
    let mut admin = PgConnectOptions::from_str(base)
        .expect("the test server's URL parses")
        .database("postgres")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("the test PostgreSQL at {base} does not answer: {e}"));
    sqlx::Executor::execute(
        &mut admin,
        sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
    )
    .await
    .expect("a test database is created");
    format!("{base}/{name}")
}

/// Starts a cluster of this process's own with `scripts/postgres.sh` (the one `scripts/test.sh`
/// uses), and a watcher that stops it with the same script when this process ends (tests have
/// no hook that runs at the end of the process).
fn start_cluster() -> Result<String, String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/postgres.sh");
    let dir = tempfile::Builder::new()
        .prefix("sealpost-pg.")
        .tempdir()
        .map_err(|e| format!("a temporary directory: {e}"))?
        .keep();
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let printed = String::from_utf8_lossy(&out.stdout);
    let url = printed
        .trim()
        .strip_prefix("POSTGRES_TEST_SERVER=")
        .filter(|_| out.status.success())
        .ok_or_else(|| String::from_utf8_lossy(&out.stderr).trim().to_owned())?
        .to_owned();
    let watcher = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; bash '{script}' stop '{dir}'",
        pid = std::process::id(),
        script = script.display(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(watcher)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    Ok(url)
}
