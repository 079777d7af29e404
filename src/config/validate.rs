//! Checks of the settings as a whole, section by section: the first bad key is named, with
//! what is wrong, before anything starts.

use std::net::IpAddr;
use std::path::Path;

use super::*;

impl Settings {
    /// Checks the settings as a whole, section by section; the error names the first bad key.
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        self.validate_general()?;
        self.validate_database()?;
        self.validate_smtp()?;
        self.validate_imap()?;
        self.validate_outbound()?;
        self.validate_policy()?;
        self.validate_auth()?;
        self.validate_api()?;
        self.validate_web()?;
        self.validate_http()?;
        self.validate_held()?;
        self.validate_sms()?;
        self.validate_webhooks()
    }

    /// The `general` section: a name and a URL that can go into notifications.
    fn validate_general(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if self.general.organization.is_empty() || has_control(&self.general.organization) {
            return fail(
                "general.organization",
                "must be a non-empty name without control characters".into(),
            );
        }
        if let Err(msg) = check_url(&self.general.public_url) {
            return fail("general.public_url", msg);
        }
        let phrase = &self.general.recognition_phrase;
        if has_control(phrase) || crate::domain::text::has_hidden_characters(phrase) {
            return fail(
                "general.recognition_phrase",
                "must be plain text (no control, format or direction characters)".into(),
            );
        }
        if phrase.chars().count() > 100 {
            return fail(
                "general.recognition_phrase",
                "must be at most 100 characters: a few words people remember".into(),
            );
        }
        let contact = &self.general.contact;
        if has_control(contact)
            || crate::domain::text::has_hidden_characters(contact)
            || contact.chars().count() > 300
        {
            return fail(
                "general.contact",
                "must be one line of plain text, at most 300 characters".into(),
            );
        }
        Ok(())
    }

    /// The `database` section: a URL of a backend this build can open.
    fn validate_database(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        let url = &self.database.url;
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return fail(
                "database.url",
                "PostgreSQL is not supported yet; use a sqlite:// URL".into(),
            );
        }
        if !url.starts_with("sqlite:") {
            return fail("database.url", "expected a sqlite:// URL".into());
        }
        Ok(())
    }

    /// The `smtp` section: names, limits, deadlines and TLS files.
    fn validate_smtp(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if !is_domain(&self.smtp.hostname) {
            return fail(
                "smtp.hostname",
                format!("'{}' is not a host name", self.smtp.hostname),
            );
        }
        if self.smtp.reply_domain.is_empty() {
            return fail(
                "smtp.reply_domain",
                "missing: set the domain that routes reply mail to Sealpost".into(),
            );
        }
        if !is_domain(&self.smtp.reply_domain) {
            return fail(
                "smtp.reply_domain",
                format!("'{}' is not a domain name", self.smtp.reply_domain),
            );
        }
        if !(1024..=1 << 30).contains(&self.smtp.max_message_bytes) {
            return fail(
                "smtp.max_message_bytes",
                "must be between 1024 and 1073741824".into(),
            );
        }
        if !(1024..=1 << 30).contains(&self.smtp.max_report_bytes) {
            return fail(
                "smtp.max_report_bytes",
                "must be between 1024 and 1073741824".into(),
            );
        }
        if !(self.smtp.max_message_bytes..=1 << 40).contains(&self.smtp.max_inflight_bytes) {
            return fail(
                "smtp.max_inflight_bytes",
                "must be at least smtp.max_message_bytes (one whole message fits)".into(),
            );
        }
        for (key, value, max) in [
            (
                "smtp.max_connections",
                self.smtp.max_connections as u64,
                100_000,
            ),
            (
                "smtp.max_connections_per_ip",
                self.smtp.max_connections_per_ip as u64,
                100_000,
            ),
            ("smtp.max_recipients", self.smtp.max_recipients as u64, 1000),
            ("smtp.max_errors", u64::from(self.smtp.max_errors), 1000),
            ("smtp.ehlo_timeout_secs", self.smtp.ehlo_timeout_secs, 3600),
            ("smtp.timeout_secs", self.smtp.timeout_secs, 3600),
            ("smtp.min_data_rate", self.smtp.min_data_rate, 1 << 30),
            ("smtp.max_session_secs", self.smtp.max_session_secs, 86_400),
        ] {
            if !(1..=max).contains(&value) {
                return fail(key, format!("must be between 1 and {max}"));
            }
        }
        match (&self.smtp.tls_cert, &self.smtp.tls_key) {
            (Some(_), None) => {
                return fail("smtp.tls_key", "required when smtp.tls_cert is set".into());
            }
            (None, Some(_)) => {
                return fail("smtp.tls_cert", "required when smtp.tls_key is set".into());
            }
            (Some(c), Some(k)) => {
                readable(c).or_else(|m| fail("smtp.tls_cert", m))?;
                readable(k).or_else(|m| fail("smtp.tls_key", m))?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The `imap` section: complete when enabled, never a password in clear text off loopback.
    fn validate_imap(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if let Some(ca) = &self.imap.ca_file {
            readable(ca).or_else(|m| fail("imap.ca_file", m))?;
        }
        if self.imap.enabled {
            if self.imap.host.is_empty() {
                return fail("imap.host", "required when imap.enabled is true".into());
            }
            if self.imap.username.is_empty() {
                return fail("imap.username", "required when imap.enabled is true".into());
            }
            match &self.imap.password_file {
                None => {
                    return fail(
                        "imap.password_file",
                        "required when imap.enabled is true".into(),
                    );
                }
                Some(p) => readable(p).or_else(|m| fail("imap.password_file", m))?,
            }
            if self.imap.tls == ImapTls::None && !is_loopback(&self.imap.host) {
                return fail(
                    "imap.tls",
                    "'none' sends the password in clear text; it is only allowed for a loopback host".into(),
                );
            }
            if self.imap.poll_interval_secs == 0 {
                return fail("imap.poll_interval_secs", "must be at least 1".into());
            }
            for (key, name) in [
                ("imap.mailbox", &self.imap.mailbox),
                ("imap.processed_mailbox", &self.imap.processed_mailbox),
                ("imap.rejected_mailbox", &self.imap.rejected_mailbox),
            ] {
                if name.is_empty() || has_control(name) {
                    return fail(key, "must be a mailbox name".into());
                }
            }
        }
        Ok(())
    }

    /// The `outbound` section: files that can be read, sane retry limits, a relay when one is named.
    fn validate_outbound(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if let Some(p) = &self.outbound.smtp_password_file {
            readable(p).or_else(|m| fail("outbound.smtp_password_file", m))?;
        }
        if let Some(p) = &self.outbound.smtp_ca_file {
            readable(p).or_else(|m| fail("outbound.smtp_ca_file", m))?;
        }
        if let Some(d) = &self.outbound.templates_dir
            && !d.is_dir()
        {
            return fail(
                "outbound.templates_dir",
                format!("{} is not a directory", d.display()),
            );
        }
        if !(1..=600).contains(&self.outbound.smtp_timeout_secs) {
            return fail(
                "outbound.smtp_timeout_secs",
                "must be between 1 and 600".into(),
            );
        }
        if !(1..=86_400).contains(&self.outbound.retry_base_secs) {
            return fail(
                "outbound.retry_base_secs",
                "must be between 1 and 86400".into(),
            );
        }
        if self.outbound.tls_fallback_after > 7 * 86_400 {
            return fail("outbound.tls_fallback_after", "must be at most 7d".into());
        }
        if !(1..=100).contains(&self.outbound.max_attempts) {
            return fail("outbound.max_attempts", "must be between 1 and 100".into());
        }
        if self.outbound.smtp_username.is_some() && self.outbound.smtp_password_file.is_none() {
            return fail(
                "outbound.smtp_password_file",
                "required when outbound.smtp_username is set".into(),
            );
        }
        if self.outbound.transport == Transport::Smtp {
            if self.outbound.smtp_host.is_empty() {
                return fail(
                    "outbound.smtp_host",
                    "required when outbound.transport is smtp".into(),
                );
            }
            if self.outbound.smtp_tls == SmtpTls::None && !is_loopback(&self.outbound.smtp_host) {
                return fail(
                    "outbound.smtp_tls",
                    "'none' is only allowed for a loopback relay".into(),
                );
            }
        }
        self.validate_dkim()
    }

    /// `outbound.dkim_*`: a selector and a key, or neither.
    fn validate_dkim(&self) -> Result<(), (&'static str, String)> {
        let o = &self.outbound;
        match (&o.dkim_selector, &o.dkim_key) {
            (None, None) => {}
            (Some(_), None) => {
                return Err((
                    "outbound.dkim_key",
                    "required when outbound.dkim_selector is set (make one with \
                     `sealpost dkim-keygen`)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err((
                    "outbound.dkim_selector",
                    "required when outbound.dkim_key is set".into(),
                ));
            }
            (Some(selector), Some(key)) => {
                if !is_domain(selector) {
                    return Err((
                        "outbound.dkim_selector",
                        format!("'{selector}' is not a DNS label such as s2026"),
                    ));
                }
                readable(key).map_err(|m| ("outbound.dkim_key", m))?;
            }
        }
        if let Some(d) = &o.dkim_domain
            && !is_domain(d)
        {
            return Err(("outbound.dkim_domain", format!("'{d}' is not a domain")));
        }
        Ok(())
    }

    /// The `policy` section.
    fn validate_policy(&self) -> Result<(), (&'static str, String)> {
        let fail = |key: &'static str, msg: String| Err((key, msg));
        if !(1..=3650).contains(&self.policy.token_ttl_days) {
            return fail("policy.token_ttl_days", "must be between 1 and 3650".into());
        }
        Ok(())
    }

    /// The `auth` section.
    fn validate_api(&self) -> Result<(), (&'static str, String)> {
        let api = &self.api;
        if api.tls_cert.is_some() != api.tls_key.is_some() {
            return Err((
                "api.tls_cert",
                "api.tls_cert and api.tls_key go together: set both or neither".into(),
            ));
        }
        let tls = api.tls_cert.is_some();
        if api.enabled && !tls && !api.listen.ip().is_loopback() && !api.allow_plaintext {
            return Err((
                "api.listen",
                format!(
                    "{} is not a loopback address and the API would speak plain HTTP: set \
                     api.tls_cert and api.tls_key, or put a TLS proxy in front and set \
                     api.allow_plaintext = true",
                    api.listen
                ),
            ));
        }
        if !(1024..=64 * 1024 * 1024).contains(&api.max_body_bytes) {
            return Err((
                "api.max_body_bytes",
                "expected between 1024 and 67108864 bytes".into(),
            ));
        }
        Ok(())
    }

    fn validate_web(&self) -> Result<(), (&'static str, String)> {
        let web = &self.web;
        if web.tls_cert.is_some() != web.tls_key.is_some() {
            return Err((
                "web.tls_cert",
                "web.tls_cert and web.tls_key go together: set both or neither".into(),
            ));
        }
        if web.enabled
            && web.tls_cert.is_none()
            && !web.listen.ip().is_loopback()
            && !web.allow_plaintext
        {
            return Err((
                "web.listen",
                format!(
                    "{} is not a loopback address and the web view would speak plain HTTP: set \
                     web.tls_cert and web.tls_key, or put a TLS proxy in front and set \
                     web.allow_plaintext = true",
                    web.listen
                ),
            ));
        }
        if web.enabled && self.api.enabled && web.listen == self.api.listen {
            return Err((
                "web.listen",
                "the web view and the API need different addresses".into(),
            ));
        }
        if !(1..=20).contains(&web.max_failures) {
            return Err(("web.max_failures", "expected 1 to 20".into()));
        }
        if !(60..=86_400).contains(&web.session_idle) {
            return Err(("web.session_idle", "expected between 1m and 24h".into()));
        }
        if web.session_max < web.session_idle || web.session_max > 7 * 86_400 {
            return Err((
                "web.session_max",
                "expected at least web.session_idle and at most 7d".into(),
            ));
        }
        if let Some(css) = &web.stylesheet {
            readable(css).map_err(|m| ("web.stylesheet", m))?;
        }
        if web.attempts_per_minute == 0 {
            return Err(("web.attempts_per_minute", "expected at least 1".into()));
        }
        Ok(())
    }

    fn validate_sms(&self) -> Result<(), (&'static str, String)> {
        let sms = &self.sms;
        if self.web.code_after_hours > 24 * 365 {
            return Err(("web.code_after_hours", "expected 0 to 8760".into()));
        }
        if !(1..=120).contains(&sms.timeout_secs) {
            return Err(("sms.timeout_secs", "expected 1 to 120".into()));
        }
        let url_ok = |url: &str| match url.split_once("://") {
            Some(("https", _)) => true,
            Some(("http", rest)) => {
                let host = rest.split(['/', '?']).next().unwrap_or("");
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
            _ => false,
        };
        match sms.provider {
            SmsProvider::Email => Ok(()),
            SmsProvider::Twilio => {
                if !url_ok(&sms.twilio_base_url) {
                    return Err((
                        "sms.twilio_base_url",
                        "expected an https URL (or http on loopback)".into(),
                    ));
                }
                if sms.twilio_account_sid.is_empty() {
                    return Err(("sms.twilio_account_sid", "required for twilio".into()));
                }
                if sms.twilio_from.is_empty() {
                    return Err(("sms.twilio_from", "required for twilio".into()));
                }
                match &sms.twilio_auth_token_file {
                    None => Err(("sms.twilio_auth_token_file", "required for twilio".into())),
                    Some(p) => readable(p).map_err(|m| ("sms.twilio_auth_token_file", m)),
                }
            }
            SmsProvider::Webhook => {
                if !url_ok(&sms.webhook_url) {
                    return Err((
                        "sms.webhook_url",
                        "expected an https URL (or http on loopback)".into(),
                    ));
                }
                match &sms.webhook_secret_file {
                    None => Err(("sms.webhook_secret_file", "required for webhook".into())),
                    Some(p) => readable(p).map_err(|m| ("sms.webhook_secret_file", m)),
                }
            }
        }
    }

    fn validate_webhooks(&self) -> Result<(), (&'static str, String)> {
        let w = &self.webhooks;
        if w.retry_for == 0 || w.retry_for > 7 * 86_400 {
            return Err(("webhooks.retry_for", "expected between 1s and 7d".into()));
        }
        if !(1..=120).contains(&w.timeout_secs) {
            return Err((
                "webhooks.timeout_secs",
                "expected between 1 and 120 seconds".into(),
            ));
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), (&'static str, String)> {
        if !(1..=60).contains(&self.auth.dns_timeout_secs) {
            return Err(("auth.dns_timeout_secs", "must be between 1 and 60".into()));
        }
        if let Some(id) = self.auth.trusted_authserv_ids.iter().find(|id| {
            !id.bytes()
                .all(|b| b.is_ascii_graphic() && !b"();\"\\".contains(&b))
        }) {
            return Err((
                "auth.trusted_authserv_ids",
                format!("'{id}' is not an authserv-id (a host name, as the relay writes it)"),
            ));
        }
        Ok(())
    }
}

pub(super) fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

pub(super) fn readable(p: &Path) -> Result<(), String> {
    std::fs::File::open(p)
        .map(drop)
        .map_err(|e| format!("cannot read {}: {e}", p.display()))
}

pub(super) fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

pub(super) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(super) fn check_url(u: &str) -> Result<(), String> {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .ok_or_else(|| format!("'{u}' is not an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || has_control(u) || u.contains(char::is_whitespace) {
        return Err(format!("'{u}' is not a valid URL"));
    }
    Ok(())
}
