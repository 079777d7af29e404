//! An HTTP client for the API tests: curl (a real HTTP client) over a real socket.

use std::process::Command;

use serde_json::Value;

use super::Sandbox;

/// One response: status, headers (lower-case names), body (JSON when it is JSON).
pub struct Reply {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

impl Reply {
    pub fn problem_type(&self) -> &str {
        self.body["type"].as_str().unwrap_or("")
    }
}

pub struct Api {
    pub port: u16,
}

impl Api {
    pub fn call(&self, method: &str, path: &str, key: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, key, body, "application/json")
    }

    /// A JSON POST with an Idempotency-Key.
    pub fn post_once(&self, path: &str, key: &str, idempotency: &str, body: &str) -> Reply {
        self.request(
            "POST",
            path,
            Some(key),
            Some(body),
            "application/json",
            &[&format!("Idempotency-Key: {idempotency}")],
        )
    }

    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
    ) -> Reply {
        self.request(method, path, key, body, content_type, &[])
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
        content_type: &str,
        headers: &[&str],
    ) -> Reply {
        let mut c = Command::new("curl");
        for h in headers {
            c.args(["-H", h]);
        }
        // No "Expect: 100-continue": one status line per reply.
        c.args([
            "-s",
            "-i",
            "-X",
            method,
            "--max-time",
            "20",
            "-H",
            "Expect:",
        ]);
        if let Some(k) = key {
            c.args(["-H", &format!("Authorization: Bearer {k}")]);
        }
        if body.is_some() {
            c.args(["-H", &format!("Content-Type: {content_type}")]);
            c.args(["--data-binary", "@-"]);
            c.stdin(std::process::Stdio::piped());
        }
        c.arg(format!("http://127.0.0.1:{}{path}", self.port));
        c.stdout(std::process::Stdio::piped());
        let mut child = c.spawn().expect("curl is required (apt-get install curl)");
        if let Some(b) = body {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
        Reply {
            status,
            headers: head.to_ascii_lowercase(),
            body: serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned())),
        }
    }
}

pub fn key(sb: &Sandbox, scope: &str) -> (String, String) {
    let out = sb
        .run(&["apikey", "create", "--name", "portal", "--scope", scope])
        .ok()
        .json();
    (
        out["id"].as_str().unwrap().to_owned(),
        out["key"].as_str().unwrap().to_owned(),
    )
}
