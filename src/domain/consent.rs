//! What a person agrees to when they choose convenience mode.

/// The warning a person is shown (and that is recorded with their choice) before they agree to
/// receive message content by ordinary email: the same words on every channel (the CLI
/// records that staff showed it; the web view shows it itself).
pub const CONVENIENCE_WARNING: &str = "Messages in this conversation will be sent to you by \
ordinary email, and you can answer them by email. Email is not fully protected: it can be read \
on its way and by anyone with access to your mailbox. You can change this at any time.";

use super::{Mode, Role};

/// Why Sealpost itself withdrew someone's consent to convenience mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Withdrawal {
    /// A convenience notification to them bounced for good.
    Bounce,
    /// Their mail provider reported one as unwanted (a feedback report).
    Complaint,
}

impl Withdrawal {
    /// Who is recorded as making the choice.
    pub fn by(self) -> &'static str {
        match self {
            Withdrawal::Bounce => "bounce",
            Withdrawal::Complaint => "complaint",
        }
    }

    /// The text recorded with the choice, as a person would have been shown one.
    pub fn text(self) -> &'static str {
        match self {
            Withdrawal::Bounce => "Withdrawn by Sealpost: a convenience notification bounced.",
            Withdrawal::Complaint => {
                "Withdrawn by Sealpost: the recipient's mail provider reported a convenience notification as unwanted."
            }
        }
    }
}

/// Whether a bounce of, or a complaint about, a notification withdraws its recipient's consent:
/// only for a notification of a message that carried content (convenience) to someone outside
/// the practice. Staff, secure notifications and notices change nothing: nothing of the
/// conversation went where it should not have.
pub fn withdrawn_by(of_a_message: bool, role: Role, mode: Mode) -> bool {
    of_a_message && role == Role::Recipient && mode == Mode::Convenience
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_content_to_a_recipient_is_withdrawn() {
        assert!(withdrawn_by(true, Role::Recipient, Mode::Convenience));
        assert!(!withdrawn_by(true, Role::Recipient, Mode::Secure));
        assert!(!withdrawn_by(true, Role::Staff, Mode::Convenience));
        assert!(!withdrawn_by(false, Role::Recipient, Mode::Convenience));
    }
}
