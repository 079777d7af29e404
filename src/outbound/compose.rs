//! Composing notifications: a [`Delivery`] in, RFC 5322 bytes out. No I/O.
//!
//! Secure-mode notifications are built from the organisation's name, the recipient and a
//! signed link, and nothing else: the [`DeliveryContent::Secure`] variant carries no content,
//! and the secure templates may not name any (see [`super::templates`]).
//!
//! Convenience-mode notifications carry the message, the earlier conversation quoted the way
//! mail clients quote, a marker line above which the recipient writes, and a `Reply-To` with the
//! participant's own reply token — only there: the Message-ID is opaque (see
//! [`notification_message_id`](crate::crypto::token::notification_message_id)), because
//! Message-IDs travel in every reply's `References` and every mail log.

use std::collections::HashMap;
use std::sync::Arc;

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address as HeaderAddress;
use mail_builder::headers::message_id::MessageId as HeaderMessageId;
use mail_builder::headers::raw::Raw;

use super::dkim::Dkim;
use super::templates::Templates;
use crate::clock;
use crate::config::Settings;
use crate::crypto::{Keyring, LinkToken, ReplyToken};
use crate::domain::NoticeReason;
use crate::domain::{Address, Mailbox, Mode, NotificationId};
use crate::store::{Delivery, DeliveryContent, MessageView};

pub use crate::domain::mail::{LOOP_HEADER, REPLY_MARKER};

/// A composed notification, ready for a transport.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The outbox row this is the composition of.
    pub id: NotificationId,
    /// The Message-ID, without angle brackets.
    pub message_id: String,
    /// The envelope sender: where bounces go.
    pub envelope_from: String,
    /// The envelope recipient.
    pub recipient: String,
    /// The whole message, CRLF line endings.
    pub bytes: Vec<u8>,
    /// It carries a message's content (convenience mode): never sent in clear text.
    pub carries_content: bool,
}

/// Builds notifications from deliveries, with the site's templates and keys.
#[derive(Clone)]
pub struct Composer {
    templates: Templates,
    keyring: Arc<Keyring>,
    organization: String,
    public_url: String,
    reply_domain: String,
    from: Mailbox,
    notice: String,
    /// The recognition phrase sentence, text and HTML (both empty when there is none).
    recognition: (String, String),
    links: bool,
    /// How to reach the practice otherwise, as a sentence.
    contact: String,
    /// Signs every notification when configured.
    dkim: Option<Arc<Dkim>>,
}

/// Who the notifications come from and what they say about it, from the configuration.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The practice's name (`general.organization`).
    pub organization: String,
    /// Base of the secure links (`general.public_url`).
    pub public_url: String,
    /// Where replies and bounces go (`smtp.reply_domain`).
    pub reply_domain: String,
    /// The From of every notification (`outbound.from`).
    pub from: Mailbox,
    /// The warning convenience notifications carry (`outbound.convenience_notice`).
    pub convenience_notice: String,
    /// The phrase every notification shows so recipients can tell it from phishing
    /// (`general.recognition_phrase`; empty: none).
    pub recognition_phrase: String,
    /// Notifications carry a link to the message (`outbound.secure_links`); without, they say
    /// to sign in at the portal as usual.
    pub links: bool,
    /// How to reach the practice otherwise (`general.contact`; empty: "contact them directly").
    pub contact: String,
}

impl Identity {
    /// The identity a configuration describes.
    pub fn of(settings: &Settings) -> Identity {
        Identity {
            organization: settings.general.organization.clone(),
            public_url: settings.general.public_url.clone(),
            reply_domain: settings.smtp.reply_domain.clone(),
            from: settings.outbound.from.clone(),
            convenience_notice: settings.outbound.convenience_notice.clone(),
            recognition_phrase: settings.general.recognition_phrase.clone(),
            links: settings.outbound.secure_links,
            contact: settings.general.contact.clone(),
        }
    }

    /// The sentence that shows the recognition phrase (empty when there is none).
    pub fn recognition_sentence(&self) -> String {
        if self.recognition_phrase.is_empty() {
            return String::new();
        }
        format!(
            "Our security phrase: {}. Every email from {} shows it; if it is missing or wrong, \
             the email is not from us.",
            self.recognition_phrase, self.organization
        )
    }
}

impl Composer {
    pub fn new(identity: Identity, templates: Templates, keyring: Arc<Keyring>) -> Composer {
        let sentence = identity.recognition_sentence();
        let recognition_html = if sentence.is_empty() {
            String::new()
        } else {
            format!(
                "<p style=\"border-left: 3px solid #2a6; padding-left: 8px;\">Our security \
                 phrase: <strong>{}</strong>. Every email from {} shows it; if it is missing \
                 or wrong, the email is not from us.</p>",
                escape_html(&identity.recognition_phrase),
                escape_html(&identity.organization)
            )
        };
        Composer {
            recognition: (sentence, recognition_html),
            links: identity.links,
            contact: if identity.contact.is_empty() {
                format!(
                    "If it is urgent, please contact {} directly.",
                    identity.organization
                )
            } else {
                format!("To reach {}: {}", identity.organization, identity.contact)
            },
            templates,
            keyring,
            organization: identity.organization,
            public_url: identity.public_url,
            reply_domain: identity.reply_domain,
            from: identity.from,
            notice: identity.convenience_notice,
            dkim: None,
        }
    }

    /// Signs every notification with `dkim`.
    pub fn with_dkim(mut self, dkim: Option<Arc<Dkim>>) -> Composer {
        self.dkim = dkim;
        self
    }

    /// The Message-ID this delivery gets if it has none yet. It names the notification and
    /// nothing else: no token, whatever the mode.
    pub fn new_message_id(&self, d: &Delivery) -> String {
        crate::crypto::token::notification_message_id(&self.keyring, d.id.0, &self.reply_domain)
    }

    /// The participant's reply token for this notification. Issued at the row's creation time
    /// so that composing the same notification again yields the same token.
    fn reply_token(&self, d: &Delivery) -> ReplyToken {
        ReplyToken::issue(&self.keyring, d.thread_id, d.recipient.id, d.created_at)
    }

    /// Builds the message for `d` with Message-ID `message_id` (as fixed in the outbox): the
    /// headers every notification has, then what its kind may say.
    pub fn compose(&self, d: &Delivery, message_id: &str, now: i64) -> Notification {
        let mut values = self.common_values(d);
        let mut builder = self.headers(d, message_id, now);
        let (subject, text, html) = match &d.content {
            DeliveryContent::Secure => (
                &self.templates.secure_subject,
                &self.templates.secure_text,
                &self.templates.secure_html,
            ),
            DeliveryContent::Notice(reason) => {
                values.set(
                    "reason",
                    &notice_text(*reason, &self.organization, &self.contact),
                );
                (
                    &self.templates.notice_subject,
                    &self.templates.notice_text,
                    &self.templates.notice_html,
                )
            }
            DeliveryContent::Convenience {
                subject,
                message,
                history,
            } => {
                self.convenience_values(&mut values, subject, message, history);
                builder = self.reply_headers(builder, d);
                (
                    &self.templates.convenience_subject,
                    &self.templates.convenience_text,
                    &self.templates.convenience_html,
                )
            }
        };
        let bytes = builder
            .subject(one_line(&subject.render(&values.text)))
            .text_body(text.render(&values.text))
            .html_body(html.render(&values.html))
            .write_to_vec()
            .expect("writing to memory cannot fail");
        let bytes = match &self.dkim {
            None => bytes,
            Some(dkim) => dkim.sign(&bytes).unwrap_or_else(|e| {
                // The key loaded at start and signs in memory: this is a defect, and an
                // unsigned notification is better than none.
                tracing::error!(notification = %d.id, error = %e, "DKIM signing failed; sent unsigned");
                bytes
            }),
        };
        Notification {
            id: d.id,
            message_id: message_id.to_owned(),
            envelope_from: crate::crypto::token::bounce_address(
                &self.keyring,
                d.id.0,
                &self.reply_domain,
            ),
            recipient: d.recipient.address.to_string(),
            bytes,
            carries_content: matches!(d.content, DeliveryContent::Convenience { .. }),
        }
    }

    /// The email that carries a code of the web view's 24-hour rule (`sms.provider =
    /// "email"`): the code, how long it lasts, the recognition phrase, nothing about any
    /// conversation. Signed like every notification; bounces go to the From address.
    pub fn code_email(&self, to: &Address, code: &str, now: i64) -> Notification {
        let id = NotificationId::random();
        let message_id = format!("code.{id}@{}", self.reply_domain);
        let from =
            HeaderAddress::new_address(self.from.name.clone(), self.from.address.to_string());
        let mut text = format!(
            "Your code is {code}\n\n\
             Enter it to open your secure messages from {org}. It is valid for 10 minutes. \
             Nobody from {org} will ever ask you for it: do not give it to anyone.\n\n\
             If you did not ask for a code, you can ignore this email.\n",
            org = self.organization
        );
        if !self.recognition.0.is_empty() {
            text.push('\n');
            text.push_str(&self.recognition.0);
            text.push('\n');
        }
        let bytes = MessageBuilder::new()
            .from(from)
            .to(HeaderAddress::new_address(None::<String>, to.to_string()))
            .message_id(message_id.clone())
            .date(now)
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .header("X-Auto-Response-Suppress", Raw::new("All"))
            .header(LOOP_HEADER, Raw::new(self.reply_domain.clone()))
            .subject(format!("Your code for {}", one_line(&self.organization)))
            .text_body(text)
            .write_to_vec()
            .expect("writing to memory cannot fail");
        let bytes = match &self.dkim {
            None => bytes,
            Some(dkim) => dkim.sign(&bytes).unwrap_or_else(|e| {
                tracing::error!(error = %e, "DKIM signing of a code email failed; sent unsigned");
                bytes
            }),
        };
        Notification {
            id,
            message_id,
            envelope_from: self.from.address.to_string(),
            recipient: to.to_string(),
            bytes,
            carries_content: false,
        }
    }

    /// What every notification's templates may use: the practice, the recipient's name and
    /// their secure link.
    fn common_values(&self, d: &Delivery) -> Values {
        let link_token = LinkToken::issue(&self.keyring, d.thread_id, d.recipient.id, d.created_at);
        let mut values = Values::default();
        values.set("organization", &self.organization);
        let link = format!("{}/m/{}", self.public_url, link_token.as_str());
        if self.links {
            values.set("link", &link);
            values.set_both(
                "access",
                &format!("Read it securely here: {link}"),
                format!("<a href=\"{}\">Read it securely</a>", escape_html(&link)),
            );
        } else {
            // Templates using {{link}} are refused at start in this case; the portal's address
            // is shown as text, never as a link.
            let access = format!(
                "To read it, sign in at {} as you usually do. This email contains no link, \
                 so that you never need to click one.",
                self.public_url
            );
            values.set("access", &access);
        }
        values.set_both(
            "recognition",
            &self.recognition.0,
            self.recognition.1.clone(),
        );
        values.set(
            "recipient_name",
            d.recipient
                .display_name
                .as_deref()
                .unwrap_or(d.recipient.address.as_str()),
        );
        values
    }

    /// The headers every notification has: From, To, Message-ID, Date, and the marks that keep
    /// auto-responders quiet and Sealpost from answering itself.
    fn headers(&self, d: &Delivery, message_id: &str, now: i64) -> MessageBuilder<'static> {
        let to = HeaderAddress::new_address(
            d.recipient.display_name.clone(),
            d.recipient.address.to_string(),
        );
        let from =
            HeaderAddress::new_address(self.from.name.clone(), self.from.address.to_string());
        // RFC 3834: a notice answers a person's message; a notification is generated.
        let auto = match d.content {
            DeliveryContent::Notice(_) => "auto-replied",
            _ => "auto-generated",
        };
        MessageBuilder::new()
            .from(from)
            .to(to)
            .message_id(message_id.to_owned())
            .date(now)
            .header("Auto-Submitted", Raw::new(auto))
            .header("X-Auto-Response-Suppress", Raw::new("All"))
            .header(LOOP_HEADER, Raw::new(self.reply_domain.clone()))
    }

    /// The content a convenience notification carries: the subject, the message, the
    /// conversation before it, the marker line and the notice that email is not protected.
    fn convenience_values(
        &self,
        values: &mut Values,
        subject: &str,
        message: &MessageView,
        history: &[MessageView],
    ) {
        values.set("subject", &one_line(subject));
        values.set("author", &author_line(message));
        values.set("notice", &self.notice);
        values.set("marker", REPLY_MARKER);
        values.set_both("body", &message.body, html_paragraphs(&message.body));
        values.set_both("history", &text_history(history), html_history(history));
    }

    /// A convenience notification's reply headers: the participant's own reply address, and
    /// the earlier notifications it follows (for threading).
    fn reply_headers(
        &self,
        builder: MessageBuilder<'static>,
        d: &Delivery,
    ) -> MessageBuilder<'static> {
        let reply_to = self.reply_token(d).address(&self.reply_domain);
        let builder = builder.reply_to(HeaderAddress::new_address(
            Some(self.organization.clone()),
            reply_to,
        ));
        match d.references.last() {
            Some(last) => builder
                .in_reply_to(HeaderMessageId::new(last.clone()))
                .references(HeaderMessageId::new_list(d.references.iter().cloned())),
            None => builder,
        }
    }
}

/// Template values, each in its text form and escaped for HTML.
#[derive(Default)]
struct Values {
    text: HashMap<&'static str, String>,
    html: HashMap<&'static str, String>,
}

impl Values {
    fn set(&mut self, name: &'static str, value: &str) {
        self.set_both(name, value, escape_html(value));
    }

    fn set_both(&mut self, name: &'static str, text: &str, html: String) {
        self.text.insert(name, text.to_owned());
        self.html.insert(name, html);
    }
}

/// What a notice says, by reason. Fixed sentences: a notice never quotes the person's mail.
/// Where their email was kept for the staff (held), it says so, and how else to reach them.
fn notice_text(reason: NoticeReason, organization: &str, contact: &str) -> String {
    match reason {
        NoticeReason::SecureThread => format!(
            "This conversation is protected: replies by email are not added to it. Your email \
             was kept for the staff of {organization} to read, but please answer through the \
             secure link below."
        ),
        NoticeReason::ThreadClosed => format!(
            "This conversation has been closed, so your email reply was not added to it; it \
             was kept for the staff of {organization} to read. Please use the secure link below \
             if you need to get in touch. {contact}"
        ),
        NoticeReason::TokenExpired => format!(
            "Your email answered a notification too old to be answered by email, so it was not \
             added to the conversation; it was kept for the staff of {organization} to read. To \
             write again, use the secure link below. {contact}"
        ),
        NoticeReason::RecipientMadeSecure => "A notification with message content to one of the \
             recipients of this conversation bounced or was reported as unwanted, so they now \
             receive secure notifications only. Please check their email address, and ask them \
             before turning convenience mode back on for them."
            .to_owned(),
        NoticeReason::RecipientLocked => "A recipient of this conversation failed the identity \
             check on the secure web view too many times and is locked out of it. Please \
             confirm who they are, then unlock them (sealpost person unlock, or the API)."
            .to_owned(),
        NoticeReason::HeldFull => "So much mail from a participant of this conversation is \
             waiting in the held queue that more is refused for now (their mail server tries \
             again later). Please look at the held mail (sealpost held list) and release or \
             reject it."
            .to_owned(),
        NoticeReason::EmptyReply => "We could not find any new text in your email reply, so \
             nothing was added to the conversation. Please write your answer above the quoted \
             message and send it again."
            .to_owned(),
    }
}

/// The mode a delivery's content belongs to (notices carry no content, like secure mode).
pub fn mode_of(d: &Delivery) -> Mode {
    match d.content {
        DeliveryContent::Secure | DeliveryContent::Notice(_) => Mode::Secure,
        DeliveryContent::Convenience { .. } => Mode::Convenience,
    }
}

fn author_line(m: &MessageView) -> String {
    match &m.author_name {
        Some(n) => format!("{n} <{}>", m.author_address),
        None => m.author_address.to_string(),
    }
}

/// Subjects and names go into headers: no line breaks or other control characters.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn when(m: &MessageView) -> String {
    let t = clock::rfc3339(m.created_at);
    // 2026-11-22T02:34:45Z -> 2026-11-22 02:34 UTC
    format!("{} {} UTC", &t[..10], &t[11..16])
}

fn text_history(history: &[MessageView]) -> String {
    let mut out = String::new();
    for m in history {
        out.push_str(&format!("On {}, {} wrote:\n", when(m), author_line(m)));
        for line in m.body.lines() {
            if line.is_empty() {
                out.push_str(">\n");
            } else {
                out.push_str("> ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
    }
    out
}

fn html_history(history: &[MessageView]) -> String {
    let mut out = String::new();
    for m in history {
        out.push_str(&format!(
            "<div>On {}, {} wrote:</div>\n<blockquote type=\"cite\" style=\"margin: 0 0 0 .8ex; border-left: 2px solid #ccc; padding-left: 1ex;\">{}</blockquote>\n",
            escape_html(&when(m)),
            escape_html(&author_line(m)),
            html_paragraphs(&m.body)
        ));
    }
    out
}

fn html_paragraphs(body: &str) -> String {
    body.lines()
        .map(escape_html)
        .collect::<Vec<_>>()
        .join("<br>\n")
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
