//! Who is told of a new message, and how: the fan-out every new message goes through (a
//! staff post, a new conversation, a filed reply), decided here so every database engine
//! applies the same rule.
//!
//! Everyone active in the conversation but its author gets one notification. Content travels
//! by email only to staff and to recipients who consented to convenience mode; everyone else
//! gets the conversation's news without it (secure). Someone who turned notifications off
//! gets a row all the same, recorded as suppressed and never sent, so the record of who was
//! told of what has no gaps.

use super::{Mode, ParticipantId, Role};

/// What the fan-out needs to know of one participant of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reader {
    pub participant: ParticipantId,
    pub role: Role,
    /// Removed from the conversation.
    pub removed: bool,
    /// Their directory entry says yes to content by email.
    pub consents: bool,
    /// Their directory entry turned notifications off.
    pub notifications_off: bool,
}

/// One notification to queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub participant: ParticipantId,
    /// With content (the conversation's convenience mode) or without.
    pub mode: Mode,
    /// Recorded, never sent.
    pub suppressed: bool,
}

/// What one reader's notifications carry in a conversation of `mode`: its content only in
/// convenience mode, and there only to staff and to recipients who agreed. Everything that
/// shows "content by email" (the API, the command line, the web view) asks this.
pub fn mode_for(mode: Mode, role: Role, consents: bool) -> Mode {
    if role == Role::Staff || consents {
        mode
    } else {
        Mode::Secure
    }
}

/// The notifications a message by `author` in a conversation of `mode` makes, in the order of
/// `readers`.
pub fn plan(mode: Mode, author: ParticipantId, readers: &[Reader]) -> Vec<Planned> {
    readers
        .iter()
        .filter(|r| r.participant != author && !r.removed)
        .map(|r| Planned {
            participant: r.participant,
            mode: mode_for(mode, r.role, r.consents),
            suppressed: r.notifications_off,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(id: i64, role: Role) -> Reader {
        Reader {
            participant: ParticipantId(id),
            role,
            removed: false,
            consents: false,
            notifications_off: false,
        }
    }

    #[test]
    fn the_author_and_removed_people_are_not_told() {
        let mut gone = reader(3, Role::Recipient);
        gone.removed = true;
        let plan = plan(
            Mode::Secure,
            ParticipantId(1),
            &[reader(1, Role::Staff), reader(2, Role::Recipient), gone],
        );
        assert_eq!(
            plan.iter().map(|p| p.participant).collect::<Vec<_>>(),
            [ParticipantId(2)]
        );
    }

    #[test]
    fn content_goes_to_staff_and_to_recipients_who_consented_only() {
        let mut yes = reader(3, Role::Recipient);
        yes.consents = true;
        let plan = plan(
            Mode::Convenience,
            ParticipantId(9),
            &[reader(1, Role::Staff), reader(2, Role::Recipient), yes],
        );
        let modes: Vec<_> = plan.iter().map(|p| p.mode).collect();
        assert_eq!(modes, [Mode::Convenience, Mode::Secure, Mode::Convenience]);
        // A secure conversation carries content to nobody, consent or not.
        let secure = super::plan(Mode::Secure, ParticipantId(9), &[yes]);
        assert_eq!(secure[0].mode, Mode::Secure);
    }

    #[test]
    fn notifications_off_is_recorded_as_suppressed_not_dropped() {
        let mut off = reader(2, Role::Recipient);
        off.notifications_off = true;
        let plan = plan(Mode::Secure, ParticipantId(1), &[off]);
        assert_eq!(plan.len(), 1);
        assert!(plan[0].suppressed);
    }
}
