//! The API against its own OpenAPI document, with schemathesis (PyPI; `scripts/test.sh`
//! installs it): every operation, generated and stateful requests; no 5xx, every response as
//! documented (status, content type, headers, body schema). Two checks are left out: "valid
//! data must be accepted" (the API is stricter than JSON Schema can say: a name may not carry
//! invisible characters, a date of birth must be a real day in the past), and "invalid data
//! must be rejected", which in schemathesis 4.32's stateful phase reports requests whose
//! invalid query parameter it never sent (it places `limit` "in path" on a path without one).

use crate::common;

use std::process::Command;

use common::{Daemon, Sandbox};

#[test]
fn schemathesis_finds_nothing() {
    let sb = Sandbox::with_keyring("");
    let key = sb
        .run(&[
            "apikey",
            "create",
            "--name",
            "schemathesis",
            "--scope",
            "admin",
        ])
        .ok()
        .json()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let daemon = Daemon::start(&sb, &[]);
    // Through the interpreter, as pip installed it: its scripts directory need not be on PATH.
    let out = Command::new("python3")
        .args([
            "-m",
            "schemathesis.cli",
            "run",
            &format!("http://127.0.0.1:{}/v1/openapi.json", sb.api_port),
            "-H",
            &format!("Authorization: Bearer {key}"),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance,negative_data_rejection",
            "--max-examples",
            "40",
            "--seed",
            "20261202",
            "--no-color",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("schemathesis is required (bash scripts/test.sh installs it: pip install schemathesis): {e}")
        });
    let report = String::from_utf8_lossy(&out.stdout);
    daemon.stop();
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("Stateful"), "{report}");
}
