//! A real PostgreSQL server for the tests, on 127.0.0.1: the one `POSTGRES_TEST_SERVER`
//! names (`postgres://user@host:port`, as `scripts/test.sh` starts one), or else a cluster of
//! this process's own — Debian's `initdb` in a temporary directory, a free port, run as the
//! `postgres` user when the tests run as root — stopped and removed by a watcher once this
//! process has ended. Each test gets a database of its own on it.
//!
//! No test skips for want of a server: a machine without PostgreSQL fails here, saying what
//! to install.

use std::path::{Path, PathBuf};
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

/// The directory of Debian's PostgreSQL programs (`initdb`, `pg_ctl`), newest version first.
fn bin_dir() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file());
    let debian = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path().join("bin/initdb")))
        .filter(|p| p.is_file())
        .max_by_key(|p| {
            p.iter()
                .nth(4)
                .and_then(|v| v.to_str()?.parse::<u32>().ok())
                .unwrap_or(0)
        });
    let initdb = debian.or(on_path).ok_or_else(|| {
        "initdb not found: install PostgreSQL (apt-get install -y --no-install-recommends \
         postgresql), or set POSTGRES_TEST_SERVER to a server's URL"
            .to_owned()
    })?;
    let initdb = std::fs::canonicalize(&initdb).unwrap_or(initdb);
    Ok(initdb
        .parent()
        .expect("initdb is in a directory")
        .to_owned())
}

/// Runs a PostgreSQL program; as the `postgres` user when this process is root (the server
/// refuses to run as root).
fn pg_command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.arg("-u").arg("postgres").arg("--").arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// Starts a cluster of this process's own and a watcher that stops it when the process ends.
fn start_cluster() -> Result<String, String> {
    let bin = bin_dir()?;
    let dir = tempfile::Builder::new()
        .prefix("sealpost-pg.")
        .tempdir()
        .map_err(|e| format!("a temporary directory: {e}"))?
        .keep();
    if is_root() {
        let owned = Command::new("chown")
            .arg("postgres:")
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        if !owned {
            return Err("cannot hand the cluster's directory to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("a free port: {e}"))?
        .port();
    let run = |c: &mut Command, what: &str| -> Result<(), String> {
        let out = c
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("{what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{what} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    };
    run(
        pg_command(&bin.join("initdb")).arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]),
        "initdb",
    )?;
    // The tests check Sealpost, not the server's durability: no fsync, so a store test costs
    // what its statements cost.
    let options = format!(
        "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
         -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        dir.display()
    );
    run(
        pg_command(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]),
        "pg_ctl start",
    )?;
    watch(&bin, &dir);
    Ok(format!("postgres://postgres@127.0.0.1:{port}"))
}

/// A shell that waits for this process to end, then stops the cluster and removes its
/// directory (tests have no hook that runs at the end of the process).
fn watch(bin: &Path, dir: &Path) {
    let as_pg = if is_root() {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
         {as_pg}'{pg_ctl}' -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
        pid = std::process::id(),
        pg_ctl = bin.join("pg_ctl").display(),
        data = dir.join("data").display(),
        dir = dir.display(),
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}
