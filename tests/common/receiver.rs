//! A real HTTP receiver (tests/peers/webhook_receiver.py, Python's http.server) for webhook
//! deliveries and the SMS providers' requests, and the check a Standard Webhooks receiver
//! makes of a signature.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use hmac::{KeyInit, Mac};
use serde_json::Value;

/// The receiver, stopped when dropped.
pub struct Receiver {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl Receiver {
    pub fn start(dir: &Path, port: u16, extra: &[&str]) -> Receiver {
        use std::io::BufRead;
        std::fs::create_dir_all(dir).unwrap();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/webhook_receiver.py"
        );
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--dir"])
            .arg(dir)
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is required to run the webhook receiver");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the webhook receiver did not start");
        Receiver {
            child,
            port,
            dir: dir.to_owned(),
        }
    }

    pub fn received(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("received.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks a request the way a receiver following the Standard Webhooks specification does:
/// the signature over `id.timestamp.body` with the secret, and a fresh timestamp. Returns the
/// body as JSON.
pub fn verify(secret: &str, request: &Value) -> Value {
    let headers = &request["headers"];
    let id = headers["webhook-id"].as_str().expect("webhook-id");
    let ts = headers["webhook-timestamp"]
        .as_str()
        .expect("webhook-timestamp");
    let sig = headers["webhook-signature"]
        .as_str()
        .expect("webhook-signature");
    let body = request["body"].as_str().unwrap();
    let key = data_encoding::BASE64
        .decode(
            secret
                .strip_prefix("whsec_")
                .expect("whsec_ prefix")
                .as_bytes(),
        )
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    let expected = format!(
        "v1,{}",
        data_encoding::BASE64.encode(&mac.finalize().into_bytes())
    );
    assert!(
        sig.split(' ').any(|s| s == expected),
        "signature {sig} does not verify for {id}"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts: i64 = ts.parse().unwrap();
    assert!((now - ts).abs() < 300, "stale timestamp {ts}");
    assert_eq!(
        headers["content-type"].as_str(),
        Some("application/json"),
        "{request}"
    );
    serde_json::from_str(body).unwrap()
}
