//! Notification templates: plain files with `{{placeholder}}`s, built in and overridable.
//!
//! The built-in templates are compiled into the binary; `outbound.templates_dir` may hold
//! replacements with the same file names. Every template is checked when the daemon starts:
//! a placeholder a template may not use is a start-up error, not a blank in a patient's inbox.
//! In particular the secure-mode templates are *offered* no content at all (see
//! [`SECURE_PLACEHOLDERS`]), so no template edit can make them carry any.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Placeholders a secure-mode template may use: nothing about the thread or its messages.
/// `access` is how to read the message (the link, or "sign in as usual" when
/// `outbound.secure_links` is off); `recognition` the practice's recognition phrase.
pub const SECURE_PLACEHOLDERS: &[&str] = &[
    "organization",
    "link",
    "access",
    "recognition",
    "recipient_name",
];

/// Placeholders a notice template may use: like secure mode, plus the fixed reason sentence.
pub const NOTICE_PLACEHOLDERS: &[&str] = &[
    "organization",
    "link",
    "access",
    "recognition",
    "recipient_name",
    "reason",
];

/// Placeholders a convenience-mode template may use.
pub const CONVENIENCE_PLACEHOLDERS: &[&str] = &[
    "organization",
    "link",
    "access",
    "recognition",
    "recipient_name",
    "subject",
    "author",
    "body",
    "history",
    "notice",
    "marker",
];

/// Why a template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read template {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template {name}: unknown placeholder {{{{{placeholder}}}}} (allowed: {allowed})")]
    Placeholder {
        name: String,
        placeholder: String,
        allowed: String,
    },
    #[error("template {name}: '{{{{' without a closing '}}}}'")]
    Unclosed { name: String },
    #[error(
        "template {name} does not show the recognition phrase: add {{{{recognition}}}} \
         (general.recognition_phrase is set, and every notification must carry it)"
    )]
    NoRecognition { name: String },
    #[error(
        "template {name} uses {{{{link}}}}, but outbound.secure_links = false promises \
         notifications without links: use {{{{access}}}}"
    )]
    Link { name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Slot(String),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`, refusing placeholders outside `allowed`.
    pub fn parse(name: &str, text: &str, allowed: &[&str]) -> Result<Template, TemplateError> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                pieces.push(Piece::Literal(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| TemplateError::Unclosed {
                name: name.to_owned(),
            })?;
            let slot = after[..end].trim();
            if !allowed.contains(&slot) {
                return Err(TemplateError::Placeholder {
                    name: name.to_owned(),
                    placeholder: slot.to_owned(),
                    allowed: allowed.join(", "),
                });
            }
            pieces.push(Piece::Slot(slot.to_owned()));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Literal(rest.to_owned()));
        }
        Ok(Template { pieces })
    }

    /// Whether the template uses placeholder `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.pieces
            .iter()
            .any(|p| matches!(p, Piece::Slot(s) if s == name))
    }

    /// Fills the placeholders from `values` (a missing value renders as nothing).
    pub fn render(&self, values: &HashMap<&str, String>) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Literal(s) => out.push_str(s),
                Piece::Slot(k) => out.push_str(values.get(k.as_str()).map_or("", String::as_str)),
            }
        }
        out
    }
}

/// The templates of the three kinds of mail Sealpost sends.
#[derive(Debug, Clone)]
pub struct Templates {
    pub secure_subject: Template,
    pub secure_text: Template,
    pub secure_html: Template,
    pub convenience_subject: Template,
    pub convenience_text: Template,
    pub convenience_html: Template,
    pub notice_subject: Template,
    pub notice_text: Template,
    pub notice_html: Template,
}

const BUILT_IN: &[(&str, &str)] = &[
    (
        "secure.subject.txt",
        include_str!("templates/secure.subject.txt"),
    ),
    ("secure.txt", include_str!("templates/secure.txt")),
    ("secure.html", include_str!("templates/secure.html")),
    (
        "convenience.subject.txt",
        include_str!("templates/convenience.subject.txt"),
    ),
    ("convenience.txt", include_str!("templates/convenience.txt")),
    (
        "convenience.html",
        include_str!("templates/convenience.html"),
    ),
    (
        "notice.subject.txt",
        include_str!("templates/notice.subject.txt"),
    ),
    ("notice.txt", include_str!("templates/notice.txt")),
    ("notice.html", include_str!("templates/notice.html")),
];

impl Templates {
    /// The built-in templates, replaced file by file from `dir` where it has one.
    pub fn load(dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let text = |name: &str| -> Result<String, TemplateError> {
            if let Some(d) = dir {
                let p = d.join(name);
                if p.exists() {
                    return std::fs::read_to_string(&p)
                        .map_err(|source| TemplateError::Read { path: p, source });
                }
            }
            Ok(BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .expect("every template has a built-in version")
                .1
                .to_owned())
        };
        let t = |name: &str, allowed: &[&str]| Template::parse(name, &text(name)?, allowed);
        Ok(Templates {
            secure_subject: t("secure.subject.txt", SECURE_PLACEHOLDERS)?,
            secure_text: t("secure.txt", SECURE_PLACEHOLDERS)?,
            secure_html: t("secure.html", SECURE_PLACEHOLDERS)?,
            convenience_subject: t("convenience.subject.txt", CONVENIENCE_PLACEHOLDERS)?,
            convenience_text: t("convenience.txt", CONVENIENCE_PLACEHOLDERS)?,
            convenience_html: t("convenience.html", CONVENIENCE_PLACEHOLDERS)?,
            notice_subject: t("notice.subject.txt", NOTICE_PLACEHOLDERS)?,
            notice_text: t("notice.txt", NOTICE_PLACEHOLDERS)?,
            notice_html: t("notice.html", NOTICE_PLACEHOLDERS)?,
        })
    }

    /// The body templates (text and HTML of each kind), by file name.
    fn bodies(&self) -> [(&'static str, &Template); 6] {
        [
            ("secure.txt", &self.secure_text),
            ("secure.html", &self.secure_html),
            ("convenience.txt", &self.convenience_text),
            ("convenience.html", &self.convenience_html),
            ("notice.txt", &self.notice_text),
            ("notice.html", &self.notice_html),
        ]
    }

    /// Checks the templates keep the promises the configuration makes: the recognition phrase
    /// in every notification (`recognition`), and no link in any (`!links`).
    pub fn check(&self, recognition: bool, links: bool) -> Result<(), TemplateError> {
        for (name, t) in self.bodies() {
            if recognition && !t.uses("recognition") {
                return Err(TemplateError::NoRecognition { name: name.into() });
            }
            if !links && t.uses("link") {
                return Err(TemplateError::Link { name: name.into() });
            }
        }
        let subjects = [
            ("secure.subject.txt", &self.secure_subject),
            ("convenience.subject.txt", &self.convenience_subject),
            ("notice.subject.txt", &self.notice_subject),
        ];
        if !links && let Some((name, _)) = subjects.iter().find(|(_, t)| t.uses("link")) {
            return Err(TemplateError::Link {
                name: (*name).into(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_ins_parse() {
        Templates::load(None).unwrap();
    }

    #[test]
    fn renders_slots() {
        let t =
            Template::parse("t", "Hi {{ organization }}, {{link}}!", SECURE_PLACEHOLDERS).unwrap();
        let v = HashMap::from([("organization", "Org".to_owned()), ("link", "L".to_owned())]);
        assert_eq!(t.render(&v), "Hi Org, L!");
    }

    #[test]
    fn secure_templates_cannot_ask_for_content() {
        for slot in ["subject", "body", "author", "history"] {
            let err = Template::parse(
                "secure.txt",
                &format!("{{{{{slot}}}}}"),
                SECURE_PLACEHOLDERS,
            )
            .unwrap_err();
            assert!(matches!(err, TemplateError::Placeholder { .. }), "{slot}");
        }
        assert!(matches!(
            Template::parse("x", "{{link", SECURE_PLACEHOLDERS),
            Err(TemplateError::Unclosed { .. })
        ));
    }

    #[test]
    fn overrides_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secure.subject.txt"),
            "Nachricht von {{organization}}",
        )
        .unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let v = HashMap::from([("organization", "Praxis".to_owned())]);
        assert_eq!(t.secure_subject.render(&v), "Nachricht von Praxis");
        std::fs::write(dir.path().join("secure.txt"), "{{body}}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
