//! What one reader may see of a conversation: the one place that decides it, for the web view
//! (a participant's own page), the notification composer (the history a notification quotes)
//! and the API (the practice, which sees everything).
//!
//! Today a participant outside the practice sees every message of their conversation, the
//! practice's people, themselves, and — only in a conversation read together on purpose — the
//! others reading it; never the others' private state (consent, archiving), who else read
//! what, or mail held for review. Groups whose members never see each other will narrow the
//! message rule here, once, for all three.

use super::model::{MessageView, ParticipantView, ThreadView};
use crate::domain::{ParticipantId, Role};

/// Who is looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// The practice (the CLI, the API): everything.
    Practice,
    /// One participant, on their own page or in a notification to them.
    Participant(ParticipantId),
}

/// The rule for one viewer of one conversation.
#[derive(Debug, Clone, Copy)]
pub struct Projection {
    viewer: Viewer,
    /// The viewer is someone at the practice (a staff participant sees what the practice sees).
    practice: bool,
    shared: bool,
}

impl Projection {
    /// The rule for `viewer` (of role `role`, when a participant) in a conversation that is
    /// `shared` or not.
    pub fn new(viewer: Viewer, role: Option<Role>, shared: bool) -> Projection {
        Projection {
            viewer,
            practice: viewer == Viewer::Practice || role == Some(Role::Staff),
            shared,
        }
    }

    fn me(&self) -> Option<ParticipantId> {
        match self.viewer {
            Viewer::Participant(p) => Some(p),
            Viewer::Practice => None,
        }
    }

    /// Whether the viewer sees this message.
    pub fn shows_message(&self, _m: &MessageView) -> bool {
        true
    }

    /// What the viewer sees of a participant, if anything.
    pub fn participant(&self, p: &ParticipantView) -> Option<ParticipantView> {
        if self.practice {
            return Some(p.clone());
        }
        let me = self.me() == Some(p.id);
        if me {
            return Some(p.clone());
        }
        let visible = !p.revoked && (p.role == Role::Staff || self.shared);
        visible.then(|| ParticipantView {
            consented: None,
            archived: false,
            ..p.clone()
        })
    }
}

impl ThreadView {
    /// Whether `p`'s notifications of this conversation carry its content (see
    /// [`crate::domain::fanout::mode_for`]).
    pub fn content_by_email(&self, p: &ParticipantView) -> bool {
        crate::domain::fanout::mode_for(self.mode, p.role, p.consented == Some(true))
            == crate::domain::Mode::Convenience
    }

    /// This conversation as `viewer` may see it; `None` when the viewer is not one of its
    /// participants (or was removed from it).
    pub fn seen_by(&self, viewer: Viewer) -> Option<ThreadView> {
        let role = match viewer {
            Viewer::Practice => None,
            Viewer::Participant(id) => {
                let me = self
                    .participants
                    .iter()
                    .find(|p| p.id == id && !p.revoked)?;
                Some(me.role)
            }
        };
        let rule = Projection::new(viewer, role, self.shared);
        if rule.practice {
            return Some(self.clone());
        }
        let me = rule.me();
        Some(ThreadView {
            participants: self
                .participants
                .iter()
                .filter_map(|p| rule.participant(p))
                .collect(),
            messages: self
                .messages
                .iter()
                .filter(|m| rule.shows_message(m))
                .cloned()
                .collect(),
            reads: self
                .reads
                .iter()
                .filter(|r| Some(r.participant) == me)
                .copied()
                .collect(),
            held: 0,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Address, Mode, ThreadId};
    use crate::store::ReadReceipt;

    fn person(id: i64, role: Role, revoked: bool) -> ParticipantView {
        ParticipantView {
            id: ParticipantId(id),
            address: Address::parse(&format!("p{id}@example.test")).unwrap(),
            display_name: None,
            role,
            revoked,
            consented: Some(true),
            archived: true,
        }
    }

    fn conversation(shared: bool) -> ThreadView {
        ThreadView {
            id: ThreadId(1),
            subject: "S".into(),
            mode: Mode::Secure,
            closed: false,
            created_at: 0,
            held: 2,
            participants: vec![
                person(1, Role::Staff, false),
                person(2, Role::Recipient, false),
                person(3, Role::Recipient, false),
                person(4, Role::Recipient, true),
            ],
            messages: Vec::new(),
            withdrawn: Vec::new(),
            reads: vec![
                ReadReceipt {
                    message: crate::domain::MessageId(9),
                    participant: ParticipantId(2),
                    at: 5,
                },
                ReadReceipt {
                    message: crate::domain::MessageId(9),
                    participant: ParticipantId(3),
                    at: 6,
                },
            ],
            shared,
        }
    }

    fn ids(v: &ThreadView) -> Vec<i64> {
        v.participants.iter().map(|p| p.id.0).collect()
    }

    #[test]
    fn the_practice_sees_everything() {
        let t = conversation(false);
        assert_eq!(t.seen_by(Viewer::Practice), Some(t.clone()));
        assert_eq!(t.seen_by(Viewer::Participant(ParticipantId(1))), Some(t));
    }

    #[test]
    fn a_patient_sees_the_practice_and_themselves_and_no_one_elses_state() {
        let t = conversation(false);
        let mine = t.seen_by(Viewer::Participant(ParticipantId(2))).unwrap();
        assert_eq!(ids(&mine), [1, 2]);
        assert_eq!(mine.held, 0);
        assert_eq!(mine.reads.len(), 1, "only their own reads");
        let staff = &mine.participants[0];
        assert_eq!((staff.consented, staff.archived), (None, false));
        assert_eq!(
            mine.participants[1].consented,
            Some(true),
            "their own, whole"
        );
    }

    #[test]
    fn readers_of_a_shared_conversation_see_each_other_but_not_the_removed() {
        let t = conversation(true);
        let mine = t.seen_by(Viewer::Participant(ParticipantId(2))).unwrap();
        assert_eq!(ids(&mine), [1, 2, 3]);
    }

    #[test]
    fn a_stranger_or_someone_removed_sees_nothing() {
        let t = conversation(true);
        assert_eq!(t.seen_by(Viewer::Participant(ParticipantId(4))), None);
        assert_eq!(t.seen_by(Viewer::Participant(ParticipantId(99))), None);
    }
}
