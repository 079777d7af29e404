//! Words both sides of the email loop share: what notifications carry so that replies can be
//! read (the marker line), so that Sealpost never answers itself (the loop header), and so
//! that a reply's References can be traced to a notification (the Message-ID format).
//!
//! They live here, below `inbound` and `outbound`, so that filing a reply never depends on the
//! code that composes notifications.

/// The line convenience notifications carry; a reply is cut where its quoted copy appears.
pub const REPLY_MARKER: &str = "=== Write your reply above this line ===";

/// Header marking mail Sealpost sent, so it never answers itself.
pub const LOOP_HEADER: &str = "X-Sealpost-Loop";

/// How notification Message-IDs begin (`sp2.`; `sp.` was the form before schema version 3).
pub const MESSAGE_ID_PREFIX: &str = "sp2.";

/// A notification's Message-ID: `sp2.<notification id>.<tag>@<reply_domain>`. The tag (made by
/// `crypto::token`) lets Sealpost recognise its own ids without a database read.
pub fn notification_message_id(
    notification: crate::domain::NotificationId,
    tag: &str,
    reply_domain: &str,
) -> String {
    format!(
        "{MESSAGE_ID_PREFIX}{notification}.{tag}@{}",
        reply_domain.to_ascii_lowercase()
    )
}

/// The notification and the tag in one of our Message-IDs for `reply_domain` (with or without
/// angle brackets, any case). Says nothing about whether the tag verifies.
pub fn parse_notification_message_id<'a>(
    message_id: &'a str,
    reply_domain: &str,
) -> Option<(crate::domain::NotificationId, &'a str)> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, domain) = id.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(reply_domain) {
        return None;
    }
    let rest = local
        .get(..MESSAGE_ID_PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(MESSAGE_ID_PREFIX))
        .map(|_| &local[MESSAGE_ID_PREFIX.len()..])?;
    let (id_hex, tag) = rest.split_once('.')?;
    if id_hex.len() != 16 {
        return None;
    }
    Some((
        id_hex
            .parse()
            .ok()
            .filter(|n: &crate::domain::NotificationId| n.0 > 0)?,
        tag,
    ))
}

/// The notification in a Message-ID of the forms earlier versions gave notifications
/// (`sp.n.ID@domain`, and `sp.TOKEN.ID@domain`, which migration 0003 rewrote in the outbox).
/// Unverified: use it only inside a thread already reached another way.
pub fn legacy_notification_of(message_id: &str) -> Option<crate::domain::NotificationId> {
    let local = message_id
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .split('@')
        .next()?;
    let mut parts = local.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("sp"), Some(_), Some(id), None) if id.len() == 16 => id
            .parse()
            .ok()
            .filter(|n: &crate::domain::NotificationId| n.0 > 0),
        _ => None,
    }
}
