//! What happened to a message, as a value each door turns into its protocol's answer, and the
//! one log line and metric every outcome leaves.

use tracing::info;

use crate::domain::fate::Refusal;
use crate::domain::{HoldReason, MessageId, NotificationId, ThreadId, Via};

/// What happened to a message. Every outcome but [`Refused`](Outcome::Refused) is
/// acknowledged by its door (SMTP `250`, IMAP move); see [`crate::domain::fate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Filed {
        thread: ThreadId,
        message: MessageId,
    },
    Duplicate {
        thread: ThreadId,
    },
    /// Kept sealed in the held queue for a person to release or reject.
    Held {
        id: i64,
        reason: HoldReason,
    },
    /// Refused in the SMTP transaction with `refusal` (the sender's server tells the sender);
    /// only ever the SMTP door's outcome, and a failed release's (no refusal then: the held
    /// message stays held).
    Refused {
        reason: &'static str,
        refusal: Option<Refusal>,
    },
    DeliveryStatus {
        notification: NotificationId,
    },
    /// Acknowledged and not kept, for a machine reason (an auto-reply, a loop, a report that
    /// names nothing of ours; over IMAP, mail no reply address of ours names).
    Ignored {
        reason: &'static str,
    },
}

impl Outcome {
    /// Filed or a duplicate of something filed: the message is safely in its thread.
    pub fn is_filed(&self) -> bool {
        matches!(self, Outcome::Filed { .. } | Outcome::Duplicate { .. })
    }

    /// Whether the door acknowledges it: everything but a refusal.
    pub fn acknowledged(&self) -> bool {
        !matches!(self, Outcome::Refused { .. })
    }
}

/// The one log line and metric of an outcome: ids and reasons, never content or a token.
pub(super) fn log_outcome(door: Via, outcome: &Outcome) {
    let door = door.as_str();
    let (word, reason) = match outcome {
        Outcome::Filed { .. } => ("filed", ""),
        Outcome::Duplicate { .. } => ("duplicate", ""),
        Outcome::Held { reason, .. } => ("held", reason.as_str()),
        Outcome::Refused { reason, .. } => ("refused", *reason),
        Outcome::DeliveryStatus { .. } => ("delivery-status", ""),
        Outcome::Ignored { reason } => ("ignored", *reason),
    };
    crate::metrics::count(
        &crate::metrics::metrics().inbound,
        [("door", door), ("outcome", word), ("reason", reason)],
    );
    match outcome {
        Outcome::Filed { thread, message } => {
            info!(door, outcome = "filed", %thread, message_id = %message, "inbound message filed")
        }
        Outcome::Duplicate { thread } => {
            info!(door, outcome = "duplicate", %thread, "inbound message already filed")
        }
        Outcome::Held { id, reason } => {
            info!(
                door,
                outcome = "held",
                held_id = format!("{id:016x}"),
                reason = reason.as_str(),
                "inbound message held for review"
            )
        }
        Outcome::Refused { reason, refusal } => {
            info!(
                door,
                outcome = "refused",
                reason,
                code = refusal.map_or(0, |r| r.code),
                "inbound message refused"
            )
        }
        Outcome::DeliveryStatus { notification } => {
            info!(door, outcome = "delivery-status", %notification, "delivery report recorded")
        }
        Outcome::Ignored { reason } => {
            info!(door, outcome = "ignored", reason, "inbound message ignored")
        }
    }
}
