//! The commented example configuration stays valid: every key it sets is one Sealpost knows.

mod common;

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
