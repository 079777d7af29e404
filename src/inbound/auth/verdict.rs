//! What authentication said about a message, and what that means under a policy.
//!
//! A [`Verdict`] is the same whoever produced it: Sealpost's own SPF/DKIM/DMARC checks at the
//! SMTP door, or a trusted relay's `Authentication-Results` header. It is stored with every
//! filed message (as [`Verdict::summary`]) so staff can see, later, why a reply was believed.

use std::fmt;

use crate::domain::AuthPolicy;
use crate::domain::kinds::vocabulary;

vocabulary!(
    /// One method's result, in RFC 8601's words.
    AuthResult {
        Pass => "pass",
        Fail => "fail",
        SoftFail => "softfail",
        Neutral => "neutral",
        /// Nothing to check: no record, no signature.
        None => "none",
        /// A DNS failure: the answer may be different later.
        TempError => "temperror",
        /// A broken record or signature.
        PermError => "permerror",
        /// A relay's verdict Sealpost does not know the meaning of.
        Policy => "policy",
    }
);

impl AuthResult {
    /// The best of several results of one method (DKIM has one per signature): one pass is
    /// enough; a DNS failure may still become one.
    pub fn best(results: &[AuthResult]) -> AuthResult {
        [
            AuthResult::Pass,
            AuthResult::TempError,
            AuthResult::Fail,
            AuthResult::PermError,
            AuthResult::Neutral,
            AuthResult::SoftFail,
            AuthResult::Policy,
        ]
        .into_iter()
        .find(|r| results.contains(r))
        .unwrap_or(AuthResult::None)
    }

    /// Reads a result word as a relay writes it (any case); unknown words count as `policy`.
    pub fn from_word(word: &str) -> AuthResult {
        let word = word.to_ascii_lowercase();
        match word.as_str() {
            // RFC 8601 §2.7.1 keeps "hardfail" as an old name for fail.
            "hardfail" => AuthResult::Fail,
            _ => word.parse().unwrap_or(AuthResult::Policy),
        }
    }
}

/// Who produced the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Sealpost checked SPF, DKIM and DMARC itself, over DNS.
    Checked,
    /// A trusted relay's `Authentication-Results` header, by its authserv-id.
    Relay(String),
    /// The message came through a relay but carries no `Authentication-Results` from any
    /// trusted authserv-id: nothing says who sent it.
    NoTrustedResults,
    /// `auth.policy = off`.
    Unchecked,
}

/// The results that decide whether a reply's sender is who `From:` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub source: Source,
    /// The `From:` domain the checks were about (as the checker read the header).
    pub from_domain: Option<String>,
    pub spf: AuthResult,
    /// The domain SPF was checked for (the `MAIL FROM` domain, or the HELO name for bounces).
    pub spf_domain: Option<String>,
    /// The best DKIM result over every signature checked.
    pub dkim: AuthResult,
    /// The signing domains (`d=`) of the signatures that verified.
    pub dkim_domains: Vec<String>,
    pub dmarc: AuthResult,
    /// The `From:` domain's DMARC policy (`none`, `quarantine`, `reject`), when it has a record.
    pub dmarc_policy: Option<String>,
}

/// What a policy makes of a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    File,
    Hold,
    /// A DNS failure left the verdict open: ask the sender to try again (SMTP 451).
    Retry,
}

impl Verdict {
    /// A verdict with every method at `none`.
    pub fn empty(source: Source) -> Verdict {
        Verdict {
            source,
            from_domain: None,
            spf: AuthResult::None,
            spf_domain: None,
            dkim: AuthResult::None,
            dkim_domains: Vec::new(),
            dmarc: AuthResult::None,
            dmarc_policy: None,
        }
    }

    /// The sender is proven to write for the `From:` domain: DMARC passes, or — for a domain
    /// that publishes no DMARC record — a DKIM signature or an SPF pass aligned with it.
    pub fn authenticated(&self) -> bool {
        let Some(from) = self.from_domain.as_deref() else {
            return false;
        };
        match self.dmarc {
            AuthResult::Pass => true,
            AuthResult::None if self.dmarc_policy.is_none() => self.aligned_pass(from),
            _ => false,
        }
    }

    /// Something says the `From:` is forged: DMARC fails, or — no DMARC record — SPF fails
    /// and no aligned signature vouches for the message.
    pub fn failed(&self) -> bool {
        let from = self.from_domain.as_deref().unwrap_or("");
        match self.dmarc {
            AuthResult::Fail => true,
            AuthResult::None if self.dmarc_policy.is_none() => {
                self.spf == AuthResult::Fail && !self.aligned_pass(from)
            }
            _ => false,
        }
    }

    /// A DNS failure touched the verdict.
    pub fn temporary(&self) -> bool {
        [self.spf, self.dkim, self.dmarc].contains(&AuthResult::TempError)
    }

    fn aligned_pass(&self, from: &str) -> bool {
        self.dkim_domains.iter().any(|d| aligned(d, from))
            || (self.spf == AuthResult::Pass
                && self.spf_domain.as_deref().is_some_and(|d| aligned(d, from)))
    }

    /// What `policy` does with a message whose sender must be the participant at
    /// `participant_domain`. A verdict about another domain than the participant's is never a
    /// pass (the checker and the pipeline read `From:` separately; they must agree).
    pub fn decide(&self, policy: AuthPolicy, participant_domain: &str) -> Decision {
        let about_participant = self
            .from_domain
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(participant_domain));
        let retry = self.temporary() && self.source == Source::Checked;
        match policy {
            AuthPolicy::Off => Decision::File,
            AuthPolicy::RequireDmarcPass if about_participant && self.authenticated() => {
                Decision::File
            }
            AuthPolicy::QuarantineOnFail
                if about_participant && !self.failed() && !self.temporary() =>
            {
                Decision::File
            }
            _ if retry => Decision::Retry,
            _ => Decision::Hold,
        }
    }

    /// One line for the record (`thread show`, `held show`): results and the domains they
    /// are about, never a local part.
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.source == Source::Unchecked {
            return f.write_str("not checked (auth.policy = off)");
        }
        write!(f, "spf={}", self.spf)?;
        if let Some(d) = &self.spf_domain {
            write!(f, " smtp.mailfrom={d}")?;
        }
        write!(f, "; dkim={}", self.dkim)?;
        for d in &self.dkim_domains {
            write!(f, " header.d={d}")?;
        }
        write!(f, "; dmarc={}", self.dmarc)?;
        if let Some(p) = &self.dmarc_policy {
            write!(f, " policy.dmarc={p}")?;
        }
        if let Some(d) = &self.from_domain {
            write!(f, " header.from={d}")?;
        }
        match &self.source {
            Source::Checked => f.write_str(" (checked by Sealpost)"),
            Source::Relay(id) => write!(f, " (from {id})"),
            Source::NoTrustedResults => {
                f.write_str(" (no Authentication-Results from a trusted relay)")
            }
            Source::Unchecked => Ok(()),
        }
    }
}

/// Relaxed alignment (RFC 7489 §3.1): the two domains are the same or one is below the other.
/// Without the public-suffix list a parent must itself have a dot, so `d=com` aligns with
/// nothing; only the domain's own DNS can publish keys or SPF for it.
pub fn aligned(a: &str, b: &str) -> bool {
    let (a, b) = (
        a.trim_end_matches('.').to_ascii_lowercase(),
        b.trim_end_matches('.').to_ascii_lowercase(),
    );
    if a.is_empty() || b.is_empty() {
        return false;
    }
    let below = |child: &str, parent: &str| {
        parent.contains('.')
            && child.len() > parent.len()
            && child.ends_with(parent)
            && child.as_bytes()[child.len() - parent.len() - 1] == b'.'
    };
    a == b || below(&a, &b) || below(&b, &a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict() -> Verdict {
        Verdict {
            from_domain: Some("example.org".into()),
            ..Verdict::empty(Source::Checked)
        }
    }

    #[test]
    fn alignment_is_relaxed_but_never_to_a_bare_suffix() {
        assert!(aligned("example.org", "EXAMPLE.org."));
        assert!(aligned("mail.example.org", "example.org"));
        assert!(aligned("example.org", "mail.example.org"));
        assert!(!aligned("badexample.org", "example.org"));
        assert!(!aligned("org", "example.org"));
        assert!(!aligned("", "example.org"));
        assert!(!aligned("other.org", "example.org"));
    }

    #[test]
    fn dmarc_pass_files_and_dmarc_fail_holds_under_every_strict_policy() {
        let pass = Verdict {
            dmarc: AuthResult::Pass,
            dmarc_policy: Some("reject".into()),
            ..verdict()
        };
        let fail = Verdict {
            dmarc: AuthResult::Fail,
            dmarc_policy: Some("none".into()),
            spf: AuthResult::Pass,
            spf_domain: Some("attacker.test".into()),
            ..verdict()
        };
        for policy in [AuthPolicy::RequireDmarcPass, AuthPolicy::QuarantineOnFail] {
            assert_eq!(pass.decide(policy, "example.org"), Decision::File);
            assert_eq!(fail.decide(policy, "example.org"), Decision::Hold);
        }
        assert_eq!(fail.decide(AuthPolicy::Off, "example.org"), Decision::File);
    }

    #[test]
    fn without_a_dmarc_record_an_aligned_pass_is_needed() {
        let dkim = Verdict {
            dkim: AuthResult::Pass,
            dkim_domains: vec!["example.org".into()],
            ..verdict()
        };
        let foreign_dkim = Verdict {
            dkim: AuthResult::Pass,
            dkim_domains: vec!["esp.test".into()],
            ..verdict()
        };
        let spf = Verdict {
            spf: AuthResult::Pass,
            spf_domain: Some("bounces.example.org".into()),
            ..verdict()
        };
        let nothing = verdict();
        let policy = AuthPolicy::RequireDmarcPass;
        assert_eq!(dkim.decide(policy, "example.org"), Decision::File);
        assert_eq!(spf.decide(policy, "example.org"), Decision::File);
        assert_eq!(foreign_dkim.decide(policy, "example.org"), Decision::Hold);
        assert_eq!(nothing.decide(policy, "example.org"), Decision::Hold);
        // quarantine-on-fail files what nothing contradicts, and holds an SPF fail.
        let q = AuthPolicy::QuarantineOnFail;
        assert_eq!(nothing.decide(q, "example.org"), Decision::File);
        let spf_fail = Verdict {
            spf: AuthResult::Fail,
            spf_domain: Some("example.org".into()),
            ..verdict()
        };
        assert_eq!(spf_fail.decide(q, "example.org"), Decision::Hold);
    }

    #[test]
    fn a_dns_failure_is_never_a_pass() {
        let temp = Verdict {
            dmarc: AuthResult::TempError,
            spf: AuthResult::TempError,
            ..verdict()
        };
        for policy in [AuthPolicy::RequireDmarcPass, AuthPolicy::QuarantineOnFail] {
            assert_eq!(temp.decide(policy, "example.org"), Decision::Retry);
        }
        // A relay's temperror cannot be retried by asking the sender again: held.
        let relayed = Verdict {
            source: Source::Relay("mx.example.test".into()),
            ..temp
        };
        assert_eq!(
            relayed.decide(AuthPolicy::RequireDmarcPass, "example.org"),
            Decision::Hold
        );
    }

    #[test]
    fn a_verdict_about_another_domain_is_no_pass() {
        let pass = Verdict {
            dmarc: AuthResult::Pass,
            dmarc_policy: Some("reject".into()),
            ..verdict()
        };
        assert_eq!(
            pass.decide(AuthPolicy::RequireDmarcPass, "patient.test"),
            Decision::Hold
        );
        assert_eq!(
            pass.decide(AuthPolicy::QuarantineOnFail, "patient.test"),
            Decision::Hold
        );
    }

    #[test]
    fn the_summary_names_results_and_domains_only() {
        let v = Verdict {
            spf: AuthResult::Pass,
            spf_domain: Some("example.org".into()),
            dkim: AuthResult::Pass,
            dkim_domains: vec!["example.org".into()],
            dmarc: AuthResult::Pass,
            dmarc_policy: Some("reject".into()),
            ..verdict()
        };
        assert_eq!(
            v.summary(),
            "spf=pass smtp.mailfrom=example.org; dkim=pass header.d=example.org; \
             dmarc=pass policy.dmarc=reject header.from=example.org (checked by Sealpost)"
        );
    }
}
