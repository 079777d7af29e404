//! Reading a relay's `Authentication-Results` header (RFC 8601).
//!
//! Behind a relay (the IMAP door; SMTP from `auth.trusted_relays`) Sealpost cannot check SPF
//! itself: it sees the relay's address, not the sender's. The relay checked, and wrote what it
//! found into an `Authentication-Results` header naming itself (the authserv-id). Anyone can
//! write such a header into a message, so only the topmost header whose authserv-id is one of
//! `auth.trusted_authserv_ids` is read — the one the relay added last — and every other is
//! ignored. (A relay is expected to remove headers carrying its own name that arrived with the
//! message, as RFC 8601 §5 asks; Postfix with OpenDMARC and Dovecot's Pigeonhole do.)

use super::verdict::{AuthResult, Source, Verdict};

/// The verdict of the topmost `Authentication-Results` header from a trusted authserv-id.
/// `headers` are the message's header fields in order, as (name, raw value).
pub fn trusted_verdict<'a>(
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    trusted: &[String],
) -> Verdict {
    for (name, value) in headers {
        if !name
            .trim_ascii()
            .eq_ignore_ascii_case(b"authentication-results")
        {
            continue;
        }
        let value = String::from_utf8_lossy(value);
        let Some(parsed) = parse(&value) else {
            continue;
        };
        if trusted
            .iter()
            .any(|t| t.eq_ignore_ascii_case(&parsed.authserv_id))
        {
            return parsed.verdict();
        }
    }
    Verdict::empty(Source::NoTrustedResults)
}

/// The header fields of a message, in order, as (name, raw value); a value spans its
/// continuation lines. Stops at the blank line that ends the header block.
pub fn header_fields(raw: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
    // (name, start of value, end of value) of the field being read.
    let mut current: Option<(&[u8], usize, usize)> = None;
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |i| at + i + 1);
        let line = &raw[at..end];
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if content.is_empty() {
            break;
        }
        if matches!(content[0], b' ' | b'\t') {
            if let Some((_, _, value_end)) = current.as_mut() {
                *value_end = at + content.len();
            }
        } else {
            if let Some((name, start, value_end)) = current.take() {
                fields.push((name, &raw[start..value_end]));
            }
            if let Some(colon) = content.iter().position(|b| *b == b':') {
                current = Some((&content[..colon], at + colon + 1, at + content.len()));
            }
        }
        at = end;
    }
    if let Some((name, start, value_end)) = current {
        fields.push((name, &raw[start..value_end]));
    }
    fields
}

/// One parsed header: who wrote it and each method's result with its properties.
#[derive(Debug, PartialEq, Eq)]
struct Header {
    authserv_id: String,
    results: Vec<MethodResult>,
}

#[derive(Debug, PartialEq, Eq)]
struct MethodResult {
    method: String,
    result: AuthResult,
    /// `ptype.property=value` pairs, the name lower-cased.
    properties: Vec<(String, String)>,
}

impl MethodResult {
    fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Header {
    fn verdict(&self) -> Verdict {
        let mut v = Verdict::empty(Source::Relay(self.authserv_id.clone()));
        let mut dkim = Vec::new();
        for r in &self.results {
            match r.method.as_str() {
                "spf" if v.spf == AuthResult::None => {
                    v.spf = r.result;
                    v.spf_domain = r
                        .property("smtp.mailfrom")
                        .or_else(|| r.property("smtp.helo"))
                        .map(domain_of);
                }
                "dkim" => {
                    dkim.push(r.result);
                    if r.result == AuthResult::Pass
                        && let Some(d) = r
                            .property("header.d")
                            .map(domain_of)
                            .or_else(|| r.property("header.i").map(domain_of))
                    {
                        v.dkim_domains.push(d);
                    }
                }
                "dmarc" if v.dmarc == AuthResult::None => {
                    v.dmarc = r.result;
                    v.from_domain = r.property("header.from").map(domain_of);
                    v.dmarc_policy = r.property("policy.dmarc").map(str::to_ascii_lowercase);
                }
                _ => {}
            }
        }
        v.dkim = AuthResult::best(&dkim);
        v
    }
}

/// The domain of `local@domain`, `@domain` or `domain`, lower-cased.
fn domain_of(v: &str) -> String {
    let v = v.trim_matches(|c| c == '<' || c == '>' || c == '"');
    v.rsplit_once('@')
        .map_or(v, |(_, d)| d)
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Parses one header value; `None` when it has no authserv-id.
fn parse(value: &str) -> Option<Header> {
    let clean = strip_comments(value);
    let mut parts = split_outside_quotes(&clean, ';').into_iter();
    let authserv_id = parts
        .next()?
        .split_whitespace()
        .next()?
        .to_ascii_lowercase();
    let mut results = Vec::new();
    for part in parts {
        let mut tokens = tokens(part).into_iter();
        let Some(first) = tokens.next() else {
            continue;
        };
        let Some((method, result)) = first.split_once('=') else {
            continue; // "none", or something unreadable
        };
        let method = method
            .split('/')
            .next()
            .unwrap_or(method)
            .to_ascii_lowercase();
        let mut properties = Vec::new();
        for token in tokens {
            if let Some((name, value)) = token.split_once('=')
                && name.contains('.')
            {
                properties.push((
                    name.to_ascii_lowercase(),
                    value.trim_matches('"').to_owned(),
                ));
            }
        }
        results.push(MethodResult {
            method,
            result: AuthResult::from_word(result.trim()),
            properties,
        });
    }
    Some(Header {
        authserv_id,
        results,
    })
}

/// Removes `(comments)`, nested or not, outside quoted strings; unfolds lines.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in s.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            '\r' | '\n' => out.push(' '),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Splits a resinfo into tokens at white space outside quotes; `a = b` is rejoined as `a=b`.
fn tokens(s: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let (mut current, mut quoted) = (String::new(), false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    raw.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        raw.push(current);
    }
    let mut out: Vec<String> = Vec::new();
    for t in raw {
        match out.last_mut() {
            Some(last) if last.ends_with('=') || t.starts_with('=') => last.push_str(&t),
            _ => out.push(t),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &[(&'static str, &'static str)]) -> Vec<(&'static [u8], &'static [u8])> {
        list.iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect()
    }

    const GMAIL_STYLE: &str = " mx.practice.test;\r\n       dkim=pass header.i=@example.org header.s=20230601 header.b=AbCd;\r\n       spf=pass (practice.test: domain of jane@example.org designates 192.0.2.1 as permitted sender) smtp.mailfrom=jane@example.org;\r\n       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.org";

    #[test]
    fn header_fields_follow_continuation_lines_and_stop_at_the_body() {
        let raw = b"Received: a\r\n\tb\r\nAuthentication-Results: x;\r\n dmarc=pass\r\nbad line\r\nSubject: s\r\n\r\nAuthentication-Results: body\r\n";
        let fields = header_fields(raw);
        let names: Vec<&[u8]> = fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            vec![&b"Received"[..], b"Authentication-Results", b"Subject"]
        );
        assert_eq!(fields[1].1, b" x;\r\n dmarc=pass");
    }

    #[test]
    fn reads_a_typical_header() {
        let v = trusted_verdict(
            headers(&[("Authentication-Results", GMAIL_STYLE)]),
            &["mx.practice.test".into()],
        );
        assert_eq!(v.source, Source::Relay("mx.practice.test".into()));
        assert_eq!(v.spf, AuthResult::Pass);
        assert_eq!(v.spf_domain.as_deref(), Some("example.org"));
        assert_eq!(v.dkim, AuthResult::Pass);
        assert_eq!(v.dkim_domains, vec!["example.org".to_owned()]);
        assert_eq!(v.dmarc, AuthResult::Pass);
        assert_eq!(v.from_domain.as_deref(), Some("example.org"));
        assert!(v.authenticated());
    }

    #[test]
    fn only_the_topmost_trusted_header_counts() {
        let forged_below = "mx.practice.test; dmarc=pass header.from=example.org";
        let real = "mx.practice.test 1; spf=fail smtp.mailfrom=example.org; dmarc=fail header.from=example.org";
        let v = trusted_verdict(
            headers(&[
                ("Authentication-Results", real),
                ("Authentication-Results", forged_below),
            ]),
            &["mx.practice.test".into()],
        );
        assert_eq!(v.dmarc, AuthResult::Fail);
        assert!(!v.authenticated());
    }

    #[test]
    fn untrusted_headers_are_ignored_whatever_they_say() {
        let v = trusted_verdict(
            headers(&[
                (
                    "Authentication-Results",
                    "attacker.test; dmarc=pass header.from=example.org",
                ),
                (
                    "Authentication-Results",
                    "mx.practice.test.evil; dmarc=pass header.from=example.org",
                ),
                ("X-Authentication-Results", GMAIL_STYLE),
            ]),
            &["mx.practice.test".into()],
        );
        assert_eq!(v.source, Source::NoTrustedResults);
        assert!(!v.authenticated());
    }

    #[test]
    fn comments_quotes_and_odd_spacing_do_not_confuse_it() {
        let value = "mx.practice.test (a comment; with dmarc=pass inside); spf = softfail \
                     smtp.mailfrom=\"x;y\"@example.org; dkim=pass (good (nested) signature) \
                     header.d=Example.ORG; dmarc=none header.from=example.org";
        let h = parse(value).unwrap();
        assert_eq!(h.authserv_id, "mx.practice.test");
        assert_eq!(h.results.len(), 3);
        let v = h.verdict();
        assert_eq!(v.spf, AuthResult::SoftFail);
        assert_eq!(v.dkim_domains, vec!["example.org".to_owned()]);
        // No DMARC record and an aligned DKIM pass.
        assert!(v.authenticated());
    }

    #[test]
    fn none_and_garbage_yield_nothing_authenticated() {
        for value in [
            "mx.practice.test; none",
            "mx.practice.test",
            "",
            ";;;",
            "mx.practice.test; dmarc",
            "mx.practice.test; dmarc=\"pass",
        ] {
            let v = trusted_verdict(
                headers(&[("Authentication-Results", value)]),
                &["mx.practice.test".into()],
            );
            assert!(!v.authenticated(), "{value:?}");
        }
    }
}
