//! The built-in defaults: what Sealpost does when a setting is not given.

use std::path::PathBuf;

use super::sources::lookup;
use super::*;

impl Settings {
    /// Built-in defaults; `env` supplies systemd's `STATE_DIRECTORY`, when running under it.
    pub(super) fn defaults(env: &Env) -> Settings {
        let data_dir = lookup(env, "STATE_DIRECTORY")
            .and_then(|v| v.split(':').next().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("./data"));
        Settings {
            general: General {
                data_dir,
                organization: "Sealpost".into(),
                public_url: "http://localhost:8080".into(),
                recognition_phrase: String::new(),
                contact: String::new(),
            },
            // Derived from data_dir after loading, unless set (the placeholders must read
            // back as valid values).
            database: Database::defaults(),
            keys: Keys::defaults(),
            smtp: Smtp::defaults(),
            imap: Imap::defaults(),
            outbound: Outbound::defaults(),
            policy: Policy::defaults(),
            api: Api::defaults(),
            web: Web::defaults(),
            http: Http::default(),
            held: Held::default(),
            sms: Sms::defaults(),
            webhooks: Webhooks::defaults(),
            auth: Auth::defaults(),
        }
    }
}

impl Database {
    fn defaults() -> Database {
        Database {
            url: "sqlite://./data/sealpost.db".into(),
        }
    }
}

impl Keys {
    fn defaults() -> Keys {
        Keys {
            path: PathBuf::from("./data/keyring.json"),
        }
    }
}

impl Smtp {
    fn defaults() -> Smtp {
        Smtp {
            listen: "127.0.0.1:2525".parse().expect("valid literal"),
            hostname: "localhost".into(),
            reply_domain: "localhost".into(),
            // A reply is text; 10 MiB leaves room for a photo or two in it.
            max_message_bytes: 10 * 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            max_connections: 200,
            max_connections_per_ip: 20,
            max_recipients: 20,
            max_errors: 10,
            ehlo_timeout_secs: 60,
            timeout_secs: 300,
            min_data_rate: 1024,
            max_session_secs: 1800,
            max_inflight_bytes: 128 * 1024 * 1024,
            // Postfix returns at most 50 kB of the original in a bounce, Exim 100 kB.
            max_report_bytes: 256 * 1024,
        }
    }
}

impl Imap {
    fn defaults() -> Imap {
        Imap {
            enabled: false,
            host: String::new(),
            port: 993,
            tls: ImapTls::Implicit,
            ca_file: None,
            username: String::new(),
            password_file: None,
            mailbox: "INBOX".into(),
            processed_mailbox: "Sealpost/Processed".into(),
            rejected_mailbox: "Sealpost/Rejected".into(),
            poll_interval_secs: 60,
        }
    }
}

impl Outbound {
    fn defaults() -> Outbound {
        Outbound {
            transport: Transport::Spool,
            spool_dir: PathBuf::from("./data/spool"),
            from: "Sealpost <sealpost@localhost>"
                .parse()
                .expect("valid literal"),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            smtp_username: None,
            smtp_password_file: None,
            smtp_ca_file: None,
            smtp_timeout_secs: 30,
            retry_base_secs: 60,
            max_attempts: 12,
            templates_dir: None,
            convenience_notice:
                "This conversation continues by ordinary email for your convenience; \
            email is not end-to-end protected."
                    .into(),
            secure_links: true,
            dkim_selector: None,
            dkim_key: None,
            dkim_domain: None,
            tls_fallback_after: 3600,
        }
    }
}

impl Policy {
    fn defaults() -> Policy {
        Policy {
            default_mode: Mode::Secure,
            token_ttl_days: 30,
            notices_per_hour: crate::domain::notice::DEFAULT_PER_HOUR,
        }
    }
}

impl Api {
    fn defaults() -> Api {
        Api {
            enabled: true,
            listen: "127.0.0.1:8081".parse().expect("valid literal"),
            allow_plaintext: false,
            max_body_bytes: 1024 * 1024,
            requests_per_minute: 6000,
            tls_cert: None,
            tls_key: None,
            max_connections: 128,
            max_connections_per_ip: 64,
        }
    }
}

impl Web {
    fn defaults() -> Web {
        Web {
            enabled: true,
            listen: "127.0.0.1:8080".parse().expect("valid literal"),
            tls_cert: None,
            tls_key: None,
            allow_plaintext: false,
            verify: WebVerify::Dob,
            max_failures: 3,
            session_idle: 15 * 60,
            session_max: 12 * 3600,
            attempts_per_minute: 10,
            new_conversations_per_hour: 10,
            notice: "For non-urgent requests only. In an emergency, call your local emergency \
                 number."
                .into(),
            billing_consent: false,
            code_after_hours: 24,
            stylesheet: None,
            max_connections: 512,
            max_connections_per_ip: 32,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Sms {
    fn defaults() -> Sms {
        Sms {
            provider: SmsProvider::Email,
            twilio_base_url: "https://api.twilio.com".into(),
            twilio_account_sid: String::new(),
            twilio_auth_token_file: None,
            twilio_from: String::new(),
            webhook_url: String::new(),
            webhook_secret_file: None,
            timeout_secs: 10,
        }
    }
}

impl Webhooks {
    fn defaults() -> Webhooks {
        Webhooks {
            retry_for: 24 * 3600,
            timeout_secs: 10,
            allow_plaintext: false,
            ca_file: None,
            allow_private: Vec::new(),
        }
    }
}

impl Auth {
    fn defaults() -> Auth {
        Auth {
            policy: AuthPolicy::RequireDmarcPass,
            dns_servers: Vec::new(),
            dns_timeout_secs: 5,
            trusted_authserv_ids: Vec::new(),
            trusted_relays: Vec::new(),
        }
    }
}
