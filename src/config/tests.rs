use std::path::Path;

use super::*;

fn env(vars: &[(&str, &str)]) -> Env {
    vars.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn from_file(text: &str, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::from_sources(
        Some((Path::new("/etc/sealpost/test.toml"), text)),
        &env(vars),
    )
}

const MINIMAL: &str = "[smtp]\nreply_domain = \"reply.example.test\"\n";

#[test]
fn defaults_need_no_file() {
    let s = Settings::from_sources(None, &env(&[])).unwrap();
    assert_eq!(s.general.data_dir, PathBuf::from("./data"));
    assert_eq!(s.database.url, "sqlite://./data/sealpost.db");
    assert_eq!(s.keys.path, PathBuf::from("./data/keyring.json"));
    assert_eq!(s.outbound.spool_dir, PathBuf::from("./data/spool"));
    assert_eq!(s.smtp.listen.to_string(), "127.0.0.1:2525");
    assert_eq!(s.outbound.transport, Transport::Spool);
    assert_eq!(s.policy.default_mode, Mode::Secure);
    assert_eq!(s.policy.token_ttl_days, 30);
    assert_eq!(s.sqlite_path(), Some(PathBuf::from("./data/sealpost.db")));
}

#[test]
fn systemd_directories_are_used() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keyring"), "x").unwrap();
    let creds = dir.path().to_str().unwrap();
    let s = Settings::from_sources(
        None,
        &env(&[
            ("STATE_DIRECTORY", "/var/lib/sealpost"),
            ("CREDENTIALS_DIRECTORY", creds),
        ]),
    )
    .unwrap();
    assert_eq!(s.general.data_dir, PathBuf::from("/var/lib/sealpost"));
    assert_eq!(s.keys.path, dir.path().join("keyring"));
}

#[test]
fn file_values_and_derived_paths() {
    let s = from_file(
        r#"
[general]
data_dir = "/srv/sp"
organization = "Lee Family Practice"
public_url = "https://portal.example.test/"
[smtp]
listen = "0.0.0.0:25"
reply_domain = "Reply.Example.TEST"
max_message_bytes = 1048576
[outbound]
from = "Lee Practice <noreply@example.test>"
[policy]
default_mode = "convenience"
token_ttl_days = 14
"#,
        &[],
    )
    .unwrap();
    assert_eq!(s.general.public_url, "https://portal.example.test");
    assert_eq!(s.smtp.reply_domain, "reply.example.test");
    assert_eq!(s.smtp.max_message_bytes, 1_048_576);
    assert_eq!(s.database.url, "sqlite:///srv/sp/sealpost.db");
    assert_eq!(s.outbound.spool_dir, PathBuf::from("/srv/sp/spool"));
    assert_eq!(s.outbound.from.name.as_deref(), Some("Lee Practice"));
    assert_eq!(s.outbound.from.address.as_str(), "noreply@example.test");
    assert_eq!(s.policy.default_mode, Mode::Convenience);
}

#[test]
fn environment_overrides_the_file() {
    let s = from_file(
        "[smtp]\nreply_domain = \"r.test\"\nlisten = \"127.0.0.1:2525\"\n",
        &[
            ("SEALPOST_SMTP__LISTEN", "0.0.0.0:25"),
            ("SEALPOST_POLICY__TOKEN_TTL_DAYS", "7"),
            ("SEALPOST_IMAP__PORT", "143"),
            ("SEALPOST_CONFIG", "/ignored"),
            ("UNRELATED", "x"),
        ],
    )
    .unwrap();
    assert_eq!(s.smtp.listen.to_string(), "0.0.0.0:25");
    assert_eq!(s.policy.token_ttl_days, 7);
    assert_eq!(s.imap.port, 143);
}

fn err(text: &str, vars: &[(&str, &str)]) -> ConfigError {
    from_file(text, vars).unwrap_err()
}

#[test]
fn unknown_keys_sections_and_variables() {
    let e = err(&format!("{MINIMAL}max_mesage_bytes = 5\n"), &[]);
    assert_eq!(e.key, "smtp.max_mesage_bytes");
    assert_eq!(e.message, "unknown setting");
    assert_eq!(e.origin, Origin::File("/etc/sealpost/test.toml".into()));

    let e = err(&format!("{MINIMAL}[smtpp]\nlisten = \"x\"\n"), &[]);
    assert_eq!(e.key, "smtpp.listen");

    let e = err(&format!("top = 1\n{MINIMAL}"), &[]);
    assert_eq!(e.key, "top");

    let e = err(MINIMAL, &[("SEALPOST_SMTP__LISTN", "x")]);
    assert_eq!(e.key, "smtp.listn");
    assert_eq!(e.origin, Origin::Env("SEALPOST_SMTP__LISTN".into()));
    assert!(e.to_string().contains("SEALPOST_SMTP__LISTN"));

    let e = err(MINIMAL, &[("SEALPOST_LISTEN", "x")]);
    assert_eq!(e.key, "SEALPOST_LISTEN");
}

#[test]
fn bad_values_name_their_key() {
    let cases: &[(&str, &str)] = &[
        (
            "[smtp]\nreply_domain=\"r.test\"\nlisten = \"nonsense\"",
            "smtp.listen",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\nmax_message_bytes = \"lots\"",
            "smtp.max_message_bytes",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\nmax_message_bytes = 10",
            "smtp.max_message_bytes",
        ),
        ("[smtp]\nreply_domain=\"not a domain\"", "smtp.reply_domain"),
        ("[smtp]\nreply_domain=\"\"", "smtp.reply_domain"),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[policy]\ndefault_mode=\"open\"",
            "policy.default_mode",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[policy]\ntoken_ttl_days=0",
            "policy.token_ttl_days",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[general]\npublic_url=\"ftp://x\"",
            "general.public_url",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[general]\norganization=\"A\\r\\nBcc: x@y\"",
            "general.organization",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[outbound]\nfrom=\"nobody\"",
            "outbound.from",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[database]\nurl=\"postgres://u:p@h/db\"",
            "database.url",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[database]\nurl=\"mysql://h/db\"",
            "database.url",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[imap]\nenabled=\"maybe\"",
            "imap.enabled",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[imap]\ntls=\"ssl\"",
            "imap.tls",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[imap]\nport=70000",
            "imap.port",
        ),
        (
            "[smtp]\nreply_domain=\"r.test\"\n[imap]\nmailbox=[1]",
            "imap.mailbox",
        ),
    ];
    for (text, key) in cases {
        let e = err(text, &[]);
        assert_eq!(e.key, *key, "{text}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("invalid configuration: {key}: ")),
            "{e}"
        );
    }
}

#[test]
fn syntax_errors_name_the_line() {
    let e = err("[smtp]\nreply_domain = \"r.test\"\nlisten = \n", &[]);
    assert_eq!(e.key, "line 3");
    assert!(e.message.starts_with("not valid TOML"), "{e}");
}

#[test]
fn missing_reply_domain_in_a_file() {
    let e = err("[general]\norganization = \"X\"\n", &[]);
    assert_eq!(e.key, "smtp.reply_domain");
    assert!(e.message.starts_with("missing"));
    // the environment may supply it
    assert!(from_file("", &[("SEALPOST_SMTP__REPLY_DOMAIN", "r.test")]).is_ok());
}

#[test]
fn files_must_be_readable() {
    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\ntls_cert=\"/nonexistent/cert.pem\"\ntls_key=\"/nonexistent/key.pem\"",
        &[],
    );
    assert_eq!(e.key, "smtp.tls_cert");
    assert!(
        e.message.contains("cannot read /nonexistent/cert.pem"),
        "{e}"
    );

    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\ntls_cert=\"/etc/hostname\"",
        &[],
    );
    assert_eq!(e.key, "smtp.tls_key");

    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\n[imap]\nca_file=\"/nonexistent\"",
        &[],
    );
    assert_eq!(e.key, "imap.ca_file");

    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\n[outbound]\nsmtp_username=\"u\"\nsmtp_password_file=\"/nonexistent\"",
        &[],
    );
    assert_eq!(e.key, "outbound.smtp_password_file");
}

#[test]
fn imap_requirements() {
    let e = err("[smtp]\nreply_domain=\"r.test\"\n[imap]\nenabled=true", &[]);
    assert_eq!(e.key, "imap.host");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret").unwrap();
    let base = format!(
        "[smtp]\nreply_domain=\"r.test\"\n[imap]\nenabled=true\nhost=\"mail.example.test\"\nusername=\"u\"\npassword_file=\"{}\"\n",
        pw.display()
    );
    assert!(from_file(&base, &[]).is_ok());
    let e = err(&format!("{base}tls=\"none\"\n"), &[]);
    assert_eq!(e.key, "imap.tls");
    let local = base.replace("mail.example.test", "127.0.0.1");
    assert!(from_file(&format!("{local}tls=\"none\"\n"), &[]).is_ok());
}

#[test]
fn outbound_smtp_requirements() {
    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\n[outbound]\ntransport=\"smtp\"",
        &[],
    );
    assert_eq!(e.key, "outbound.smtp_host");
    let e = err(
        "[smtp]\nreply_domain=\"r.test\"\n[outbound]\ntransport=\"smtp\"\nsmtp_host=\"relay.example.test\"\nsmtp_tls=\"none\"",
        &[],
    );
    assert_eq!(e.key, "outbound.smtp_tls");
    assert!(
        from_file(
            "[smtp]\nreply_domain=\"r.test\"\n[outbound]\ntransport=\"smtp\"\nsmtp_host=\"localhost\"\nsmtp_tls=\"none\"",
            &[]
        )
        .is_ok()
    );
}

#[test]
fn redacted_output_hides_database_password() {
    assert_eq!(
        redact_url("postgres://sp:hunter2@db.example.test/sealpost"),
        "postgres://sp:***@db.example.test/sealpost"
    );
    assert_eq!(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
    let s = from_file(MINIMAL, &[]).unwrap();
    let out = s.to_redacted_toml();
    assert!(out.contains("[smtp]"), "{out}");
    assert!(
        out.contains("reply_domain = \"reply.example.test\""),
        "{out}"
    );
}

#[test]
fn auth_defaults_to_requiring_dmarc() {
    let s = Settings::from_sources(None, &env(&[])).unwrap();
    assert_eq!(s.auth.policy, AuthPolicy::RequireDmarcPass);
    assert!(s.auth.dns_servers.is_empty(), "the system's resolvers");
    assert!(s.auth.trusted_authserv_ids.is_empty());
}

#[test]
fn auth_lists_come_from_toml_arrays_and_from_the_environment() {
    let s = from_file(
        &format!(
            "{MINIMAL}[auth]\npolicy = \"quarantine-on-fail\"\ndns_servers = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\ntrusted_authserv_ids = [\"MX.Example.TEST\"]\ntrusted_relays = [\"127.0.0.1\", \"10.0.0.0/8\"]\n"
        ),
        &[],
    )
    .unwrap();
    assert_eq!(s.auth.policy, AuthPolicy::QuarantineOnFail);
    assert_eq!(
        s.auth.dns_servers,
        vec![
            "192.0.2.53:53".parse().unwrap(),
            "[2001:db8::53]:5353".parse().unwrap()
        ]
    );
    assert_eq!(s.auth.trusted_authserv_ids, vec!["mx.example.test"]);
    let relays = &s.auth.trusted_relays;
    assert!(relays[0].contains("127.0.0.1".parse().unwrap()));
    assert!(!relays[0].contains("127.0.0.2".parse().unwrap()));
    assert!(relays[1].contains("10.200.3.4".parse().unwrap()));
    assert!(
        relays[1].contains("::ffff:10.1.1.1".parse().unwrap()),
        "v4-mapped"
    );
    assert!(!relays[1].contains("11.0.0.1".parse().unwrap()));

    let s = from_file(
        MINIMAL,
        &[
            ("SEALPOST_AUTH__DNS_SERVERS", "127.0.0.1:5300, 127.0.0.2"),
            ("SEALPOST_AUTH__POLICY", "off"),
        ],
    )
    .unwrap();
    assert_eq!(s.auth.dns_servers.len(), 2);
    assert_eq!(s.auth.policy, AuthPolicy::Off);
}

#[test]
fn bad_auth_values_name_their_key() {
    for (text, key) in [
        ("[auth]\npolicy = \"lenient\"\n", "auth.policy"),
        (
            "[auth]\ndns_servers = [\"resolver.example\"]\n",
            "auth.dns_servers",
        ),
        (
            "[auth]\ntrusted_relays = [\"10.0.0.0/33\"]\n",
            "auth.trusted_relays",
        ),
        ("[auth]\ndns_timeout_secs = 0\n", "auth.dns_timeout_secs"),
        (
            "[auth]\ntrusted_authserv_ids = [\"mx;evil\"]\n",
            "auth.trusted_authserv_ids",
        ),
        ("[auth]\ntrusted_relays = [1, 2]\n", "auth.trusted_relays"),
    ] {
        let err = from_file(&format!("{MINIMAL}{text}"), &[]).unwrap_err();
        assert_eq!(err.key, key, "{text}: {err}");
    }
}

#[test]
fn environment_values_are_read_like_the_file() {
    let s = from_file(
        MINIMAL,
        &[
            ("SEALPOST_GENERAL__ORGANIZATION", "  Lee, Smith & Co  "),
            ("SEALPOST_IMAP__ENABLED", "no"),
            ("SEALPOST_OUTBOUND__TLS_FALLBACK_AFTER", "30m"),
            (
                "SEALPOST_AUTH__TRUSTED_AUTHSERV_IDS",
                "MX1.Example.TEST mx2.example.test",
            ),
            ("SEALPOST_OUTBOUND__SMTP_USERNAME", ""),
        ],
    )
    .unwrap();
    assert_eq!(
        s.general.organization, "Lee, Smith & Co",
        "a comma is not a list"
    );
    assert!(!s.imap.enabled);
    assert_eq!(s.outbound.tls_fallback_after, 1800);
    assert_eq!(
        s.auth.trusted_authserv_ids,
        vec!["mx1.example.test", "mx2.example.test"]
    );
    assert_eq!(s.outbound.smtp_username, None, "empty is none");

    let e = err(MINIMAL, &[("SEALPOST_SMTP__MAX_CONNECTIONS", "lots")]);
    assert_eq!(e.key, "smtp.max_connections");
    assert_eq!(
        e.origin,
        Origin::Env("SEALPOST_SMTP__MAX_CONNECTIONS".into())
    );
    assert!(e.message.contains("'lots' is not a whole number"), "{e}");
}

/// What `check-config` prints is a configuration file that loads back into the same
/// settings (every word in the form the loader takes).
#[test]
fn printed_settings_load_back() {
    let s = from_file(
        &format!(
            "{MINIMAL}[auth]\npolicy = \"quarantine-on-fail\"\ntrusted_relays = [\"10.0.0.0/8\"]\n[outbound]\ntls_fallback_after = \"2h\"\n"
        ),
        &[],
    )
    .unwrap();
    let printed = s.to_redacted_toml();
    let again = from_file(&printed, &[]).unwrap();
    assert_eq!(again.to_redacted_toml(), printed);
    assert_eq!(again.auth.policy, AuthPolicy::QuarantineOnFail);
    assert!(
        printed.contains("policy = \"quarantine-on-fail\""),
        "{printed}"
    );
}
