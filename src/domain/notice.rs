//! Content-free notices to a person about their own mail (a reply that was held, a
//! conversation that takes no email replies): when one goes out, and when it does not.
//!
//! A notice answers one message; none is ever swallowed silently. The limit exists against
//! loops and floods — whoever can send mail as a person could otherwise make Sealpost write to
//! them at will — so a person gets at most a few an hour, and every notice over it is still
//! recorded, as suppressed, with why. Notices to staff about a recipient (locked out, made
//! secure) are bounded by what causes them and always go.

use super::NoticeReason;

/// Notices one person may get in an hour unless `policy.notices_per_hour` says otherwise.
pub const DEFAULT_PER_HOUR: u32 = 3;

/// The window the limit counts over, in seconds.
pub const WINDOW_SECS: i64 = 3600;

/// Whether a notice goes out, or is recorded as suppressed and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send,
    Suppress(&'static str),
}

/// The decision for a notice of `reason` to a person who was sent `sent_in_window` notices to
/// them in the last [`WINDOW_SECS`], under a limit of `per_hour`; `opted_out`: the person
/// turned notifications off.
pub fn decide(
    reason: NoticeReason,
    sent_in_window: u64,
    per_hour: u32,
    opted_out: bool,
) -> Decision {
    if opted_out {
        return Decision::Suppress("notifications off");
    }
    if about_a_recipient(reason) {
        return Decision::Send;
    }
    if sent_in_window >= u64::from(per_hour) {
        return Decision::Suppress("notice limit reached (policy.notices_per_hour)");
    }
    Decision::Send
}

/// Notices to staff about a recipient, not to a person about their own mail.
pub fn about_a_recipient(reason: NoticeReason) -> bool {
    matches!(
        reason,
        NoticeReason::RecipientMadeSecure | NoticeReason::RecipientLocked | NoticeReason::HeldFull
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_an_hour_then_recorded_as_suppressed() {
        let r = NoticeReason::ThreadClosed;
        assert_eq!(decide(r, 0, 3, false), Decision::Send);
        assert_eq!(decide(r, 2, 3, false), Decision::Send);
        assert!(matches!(decide(r, 3, 3, false), Decision::Suppress(_)));
        assert!(matches!(decide(r, 0, 3, true), Decision::Suppress(_)));
        // A different reason the same hour counts the same: it is the person who is protected.
        assert!(matches!(
            decide(NoticeReason::EmptyReply, 3, 3, false),
            Decision::Suppress(_)
        ));
        // Staff are told about a locked-out recipient however many notices went out.
        assert_eq!(
            decide(NoticeReason::RecipientLocked, 100, 3, false),
            Decision::Send
        );
    }
}
