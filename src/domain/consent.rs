//! What a person agrees to when they choose convenience mode.

/// The warning a person is shown (and that is recorded with their choice) before they agree to
/// receive message content by ordinary email: the same words on every channel (the CLI
/// records that staff showed it; the web view shows it itself).
pub const CONVENIENCE_WARNING: &str = "Messages in this conversation will be sent to you by \
ordinary email, and you can answer them by email. Email is not fully protected: it can be read \
on its way and by anyone with access to your mailbox. You can change this at any time.";
