//! The commented example configuration stays valid: every key it sets is one Sealpost knows.

use crate::common;

#[test]
fn example_config_is_accepted() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/sealpost.toml");
    let out = std::process::Command::new(common::binary())
        .args(["--config", path, "check-config"])
        // The example points at files that exist only on a real installation; turn those off.
        .env("SEALPOST_OUTBOUND__TRANSPORT", "spool")
        .env("SEALPOST_GENERAL__DATA_DIR", "/nonexistent/sealpost")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("reply_domain = \"reply.example.org\""),
        "{stdout}"
    );
}

/// Every key Sealpost has is in the example, set or commented out, in its section: the
/// example is where a sysadmin learns what can be set.
#[test]
fn example_config_documents_every_key() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/sealpost.toml"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(common::binary())
        .args(["--config", empty.to_str().unwrap(), "check-config"])
        .env("SEALPOST_GENERAL__DATA_DIR", dir.path())
        .env("SEALPOST_SMTP__REPLY_DOMAIN", "reply.example.org")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let defaults: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    // The example's lines by section, comments' "# " taken off so a commented key counts.
    let mut sections: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut current = String::new();
    for line in example.lines() {
        let line = line.trim().trim_start_matches('#').trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.to_owned();
        } else {
            sections
                .entry(current.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    let mut missing = Vec::new();
    for (section, keys) in &defaults {
        let Some(keys) = keys.as_table() else {
            continue;
        };
        let lines = sections.get(section).cloned().unwrap_or_default();
        for key in keys.keys() {
            if !lines.iter().any(|l| l.starts_with(&format!("{key} ="))) {
                missing.push(format!("{section}.{key}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in config/sealpost.toml: {missing:?}"
    );
}
