//! What a webhook tells a portal: the event types it can subscribe to, and the payload made
//! from an audit event. Webhooks are the audit trail pushed out: every event that has a public
//! type becomes one delivery per subscription, in the same transaction as the event, so a
//! crash can lose neither. Payloads carry ids and statuses, never content: a portal that wants
//! a message fetches it with its API key.

use serde_json::{Map, Value};

use std::net::IpAddr;

use super::ThreadId;
use super::kinds::vocabulary;
use super::network::{Network, is_public};

vocabulary!(
    /// What a subscription can ask to be told.
    WebhookEvent {
        /// A message was filed: an email reply, or a post through the API or the CLI.
        MessageFiled => "message.filed",
        /// Its author took a message back before anyone acted on it (the web view).
        MessageCancelled => "message.cancelled",
        /// A notification changed status (sent, deferred, failed, bounced, cancelled).
        NotificationStatus => "notification.status",
        /// An inbound message was refused during the SMTP transaction (the sender's server
        /// tells the sender); nothing was acknowledged.
        InboundRejected => "inbound.rejected",
        /// An inbound message was acknowledged and not kept, for a machine reason (an
        /// auto-reply, a loop, a report about nothing of ours).
        InboundIgnored => "inbound.ignored",
        /// An inbound message was put in the held queue.
        InboundHeld => "inbound.held",
        /// A held message was released into its thread or rejected.
        HeldDecided => "held.decided",
        /// A quota of the held queue is full (at most once a day per quota and source): more
        /// mail from there is refused for now.
        HeldQuotaReached => "held.quota-reached",
        ThreadCreated => "thread.created",
        /// Staff closed the conversation (replies to it are held for staff).
        ThreadClosed => "thread.closed",
        ThreadReopened => "thread.reopened",
        /// A participant archived the conversation for themselves (their own filing; the
        /// conversation stays open, and a new message brings it back for them).
        ThreadArchived => "thread.archived",
        /// A participant moved the conversation back to their inbox.
        ThreadUnarchived => "thread.unarchived",
        ParticipantAdded => "participant.added",
        ParticipantRemoved => "participant.removed",
        /// A person's directory entry or consent changed.
        PersonUpdated => "person.updated",
        PersonRemoved => "person.removed",
    }
);

impl WebhookEvent {
    /// The public type of an audit event, if it has one.
    pub fn of_audit(kind: &str) -> Option<WebhookEvent> {
        Some(match kind {
            "message.posted" => WebhookEvent::MessageFiled,
            "message.cancelled" => WebhookEvent::MessageCancelled,
            "inbound.rejected" => WebhookEvent::InboundRejected,
            "inbound.ignored" => WebhookEvent::InboundIgnored,
            "inbound.held" => WebhookEvent::InboundHeld,
            "held.released" | "held.rejected" => WebhookEvent::HeldDecided,
            "held.quota-reached" => WebhookEvent::HeldQuotaReached,
            "thread.created" => WebhookEvent::ThreadCreated,
            "thread.closed" => WebhookEvent::ThreadClosed,
            "thread.reopened" => WebhookEvent::ThreadReopened,
            "thread.archived" => WebhookEvent::ThreadArchived,
            "thread.unarchived" => WebhookEvent::ThreadUnarchived,
            "participant.added" => WebhookEvent::ParticipantAdded,
            "participant.removed" => WebhookEvent::ParticipantRemoved,
            "person.updated" | "person.consent" | "person.locked" | "person.unlocked"
            | "person.passcode" => WebhookEvent::PersonUpdated,
            "person.removed" => WebhookEvent::PersonRemoved,
            _ => match kind.strip_prefix("notification.")? {
                // A report nobody can vouch for, or one that changes nothing, is no change.
                "delivery-report" | "delivery-report-unverified" => return None,
                _ => WebhookEvent::NotificationStatus,
            },
        })
    }

    /// Parses a comma-separated list (`message.filed,thread.closed`); `*` means every type.
    pub fn parse_list(text: &str) -> Result<Vec<WebhookEvent>, super::kinds::UnknownValue> {
        if text.trim() == "*" {
            return Ok(WebhookEvent::ALL.to_vec());
        }
        let mut events = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let event: WebhookEvent = word.parse()?;
            if !events.contains(&event) {
                events.push(event);
            }
        }
        Ok(events)
    }
}

/// Where webhooks may go: the public internet over https by default; addresses in
/// `allow_private` (loopback, private, link-local: a receiver on this machine or the practice's
/// network) only when the configuration lists them; plain http only to those, or anywhere
/// with `allow_plaintext`.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub allow_plaintext: bool,
    pub allow_private: Vec<Network>,
}

impl Targets {
    /// Whether a delivery may connect to `ip` (checked again for every address a name resolves
    /// to, when connecting: a name that pointed outside at registration may point inside now).
    pub fn may_reach(&self, ip: IpAddr) -> bool {
        is_public(ip) || self.listed(ip)
    }

    fn listed(&self, ip: IpAddr) -> bool {
        self.allow_private.iter().any(|n| n.contains(ip))
    }

    /// Checks where a subscription sends to (see [`Targets`]). No user name or password in the
    /// URL: they would be shown wherever subscriptions are listed.
    pub fn check_url(&self, text: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(text.trim()).map_err(|e| format!("not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "a URL with a user name or password is not accepted; the signature \
                 authenticates deliveries"
                    .into(),
            );
        }
        let literal: Option<IpAddr> = match url.host() {
            Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => {
                Some(IpAddr::from([127, 0, 0, 1]))
            }
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            None => return Err("the URL has no host".into()),
        };
        if let Some(ip) = literal
            && !self.may_reach(ip)
        {
            return Err(format!(
                "{ip} is not a public address; a receiver on this machine or a private network \
                 must be listed in webhooks.allow_private"
            ));
        }
        let listed = literal.is_some_and(|ip| self.listed(ip));
        match url.scheme() {
            "https" => Ok(url),
            "http" if listed || self.allow_plaintext => Ok(url),
            "http" => Err(
                "plain http is accepted only to an address in webhooks.allow_private; use \
                 https (or set webhooks.allow_plaintext = true)"
                    .into(),
            ),
            other => Err(format!("the scheme {other} is not http or https")),
        }
    }
}

/// Detail keys that are ids or statuses, and the name each has in a payload. Anything else in
/// an audit event's detail (a delivery report's text, who released a held message) stays out.
const KEPT: &[(&str, &str)] = &[
    ("message_id", "message_id"),
    ("via", "via"),
    ("notification_id", "notification_id"),
    ("sent_as", "sent_as"),
    ("held_id", "held_id"),
    ("reason", "reason"),
    ("door", "door"),
    ("participant_id", "participant_id"),
    ("notifications_cancelled", "notifications_cancelled"),
    ("kind", "kind"),
    ("mode", "mode"),
    ("role", "role"),
    ("participants", "participants"),
    ("status", "status"),
    ("notifications", "notifications"),
    ("convenience", "convenience"),
    ("quota", "quota"),
];

/// The body of a delivery (the Standard Webhooks shape: `type`, `timestamp`, `data`).
pub fn payload(
    event: WebhookEvent,
    audit_kind: &str,
    thread: Option<ThreadId>,
    detail: &Value,
    at: i64,
) -> String {
    let mut data = Map::new();
    if let Some(thread) = thread {
        data.insert("thread_id".into(), Value::String(thread.to_string()));
    }
    for (from, to) in KEPT {
        if let Some(v) = detail.get(*from) {
            data.insert((*to).into(), v.clone());
        }
    }
    if let Some(person) = detail.get("person").and_then(Value::as_i64) {
        data.insert("person_id".into(), Value::String(format!("{person:016x}")));
    }
    match event {
        WebhookEvent::NotificationStatus => {
            let status = audit_kind
                .strip_prefix("notification.")
                .unwrap_or(audit_kind);
            data.insert("status".into(), Value::String(status.to_owned()));
        }
        WebhookEvent::HeldDecided => {
            let decision = if audit_kind == "held.released" {
                "released"
            } else {
                "rejected"
            };
            data.insert("decision".into(), Value::String(decision.into()));
        }
        _ => {}
    }
    // A message posted by someone is "message.posted" in the audit trail and in an event's
    // `notifications` count; a portal gets the count under a clearer name.
    if event == WebhookEvent::MessageFiled
        && let Some(n) = data.remove("notifications")
    {
        data.insert("notifications_queued".into(), n);
    }
    serde_json::json!({
        "type": event.as_str(),
        "timestamp": crate::clock::rfc3339(at),
        "data": data,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_public_type_comes_from_some_audit_kind() {
        let kinds = [
            "message.posted",
            "message.cancelled",
            "notification.sent",
            "inbound.rejected",
            "inbound.ignored",
            "inbound.held",
            "held.released",
            "held.quota-reached",
            "thread.created",
            "thread.closed",
            "thread.reopened",
            "thread.archived",
            "thread.unarchived",
            "participant.added",
            "participant.removed",
            "person.updated",
            "person.removed",
        ];
        for event in WebhookEvent::ALL {
            assert!(
                kinds
                    .iter()
                    .any(|k| WebhookEvent::of_audit(k) == Some(*event)),
                "{event} is never sent"
            );
        }
        assert_eq!(WebhookEvent::of_audit("apikey.created"), None);
        assert_eq!(
            WebhookEvent::of_audit("notification.delivery-report-unverified"),
            None
        );
        assert_eq!(WebhookEvent::of_audit("inbound.filed"), None);
    }

    #[test]
    fn a_payload_keeps_ids_and_statuses_and_drops_the_rest() {
        let detail = serde_json::json!({
            "notification_id": "00000000000000aa",
            "detail": "550 5.1.1 <patient@example.com>: no such user",
            "by": "alice",
        });
        let body = payload(
            WebhookEvent::NotificationStatus,
            "notification.bounced",
            Some(ThreadId(0xbeef)),
            &detail,
            1_700_000_000,
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["type"], "notification.status");
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20Z");
        assert_eq!(v["data"]["thread_id"], "000000000000beef");
        assert_eq!(v["data"]["status"], "bounced");
        assert_eq!(v["data"]["notification_id"], "00000000000000aa");
        assert!(!body.contains("patient@example.com"), "{body}");
        assert!(!body.contains("alice"), "{body}");
    }

    #[test]
    fn urls_must_be_https_to_the_public_internet_unless_listed() {
        let strict = Targets::default();
        assert!(strict.check_url("https://portal.example/hooks").is_ok());
        for refused in [
            "http://127.0.0.1:9000/hooks",
            "https://127.0.0.1/hooks",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/h",
            "https://localhost/h",
            "https://10.0.0.5/h",
            "http://portal.example/hooks",
            "https://user:pw@portal.example/",
            "ftp://portal.example/",
            "portal.example",
        ] {
            assert!(strict.check_url(refused).is_err(), "{refused}");
        }
        let local = Targets {
            allow_plaintext: false,
            allow_private: vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()],
        };
        assert!(local.check_url("http://127.0.0.1:9000/hooks").is_ok());
        assert!(local.check_url("https://10.1.2.3/hooks").is_ok());
        assert!(local.check_url("http://localhost/h").is_ok());
        assert!(local.check_url("https://169.254.169.254/").is_err());
        assert!(!local.may_reach("192.168.1.1".parse().unwrap()));
        let plain = Targets {
            allow_plaintext: true,
            ..Targets::default()
        };
        assert!(plain.check_url("http://portal.example/hooks").is_ok());
    }

    #[test]
    fn lists_parse_with_star_and_refuse_unknown_types() {
        assert_eq!(
            WebhookEvent::parse_list("message.filed, thread.closed,message.filed").unwrap(),
            vec![WebhookEvent::MessageFiled, WebhookEvent::ThreadClosed]
        );
        assert_eq!(
            WebhookEvent::parse_list("*").unwrap().len(),
            WebhookEvent::ALL.len()
        );
        assert!(WebhookEvent::parse_list("message.read").is_err());
        // Archiving is a participant's own filing, no longer an alias of closing.
        assert_eq!(
            WebhookEvent::parse_list("thread.archived").unwrap(),
            vec![WebhookEvent::ThreadArchived]
        );
    }
}
