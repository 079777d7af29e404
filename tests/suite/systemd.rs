//! The shipped unit file stays hardened: `systemd-analyze security` rates it 2.0 or better,
//! and it keeps what the daemon needs (notify, watchdog, port 25, the keyring credential).

use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/sealpost.service");

#[test]
fn exposure_is_at_most_two() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager", UNIT])
        .output()
        .expect("systemd-analyze is required for this test (Debian package: systemd)");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no rating in: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unparsable: {line}"));
    assert!(score <= 2.0, "{line}");
}

#[test]
fn unit_keeps_what_the_daemon_needs() {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    for needed in [
        "Type=notify",
        "WatchdogSec=",
        "StateDirectory=sealpost",
        "ConfigurationDirectory=sealpost",
        "LoadCredential=keyring:",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(
            unit.lines().any(|l| l.starts_with(needed)),
            "missing {needed}"
        );
    }
}
