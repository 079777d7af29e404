//! Rules about a message once it is in a conversation: when its author may still take it back.
//!
//! Seed 001's rule: a message may be cancelled "if no action has been taken on the message".
//! Action here is anything that means somebody has it: a notification that carried its
//! content was delivered, someone at the practice read it (on the web view, with the CLI, or a
//! portal through the API), another participant saw it, or anyone wrote after it. A message
//! taken back leaves a tombstone in the conversation and the audit trail; its body is destroyed.

/// What is known about a message when its author asks to take it back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CancelFacts {
    /// The one asking wrote it.
    pub by_author: bool,
    /// It was taken back already.
    pub withdrawn: bool,
    /// Staff closed the conversation.
    pub closed: bool,
    /// A message came after it (an answer, or anything later).
    pub answered: bool,
    /// Another participant saw it on the web view.
    pub seen_by_participant: bool,
    /// Someone at the practice read it outside the web view (CLI, API).
    pub read_by_practice: bool,
    /// A notification carrying its content was delivered.
    pub delivered_with_content: bool,
}

/// Why a message may not be taken back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    #[error("it is not yours to take back")]
    NotYours,
    #[error("the conversation is closed")]
    Closed,
    #[error("someone wrote after it")]
    Answered,
    #[error("it was read already")]
    Read,
    #[error("it was delivered by email with its content already")]
    Delivered,
}

/// Whether the author may take the message back.
pub fn may_cancel(f: &CancelFacts) -> Result<(), CancelRefusal> {
    if !f.by_author || f.withdrawn {
        return Err(CancelRefusal::NotYours);
    }
    if f.closed {
        return Err(CancelRefusal::Closed);
    }
    if f.answered {
        return Err(CancelRefusal::Answered);
    }
    if f.seen_by_participant || f.read_by_practice {
        return Err(CancelRefusal::Read);
    }
    if f.delivered_with_content {
        return Err(CancelRefusal::Delivered);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_while_nobody_has_it() {
        let fresh = CancelFacts {
            by_author: true,
            ..CancelFacts::default()
        };
        assert_eq!(may_cancel(&fresh), Ok(()));
        let with = |f: CancelFacts| may_cancel(&f);
        assert_eq!(
            with(CancelFacts {
                delivered_with_content: true,
                ..fresh
            }),
            Err(CancelRefusal::Delivered)
        );
        assert_eq!(
            with(CancelFacts {
                read_by_practice: true,
                ..fresh
            }),
            Err(CancelRefusal::Read)
        );
        assert_eq!(
            with(CancelFacts {
                seen_by_participant: true,
                ..fresh
            }),
            Err(CancelRefusal::Read)
        );
        assert_eq!(
            with(CancelFacts {
                answered: true,
                ..fresh
            }),
            Err(CancelRefusal::Answered)
        );
        assert_eq!(
            with(CancelFacts {
                closed: true,
                ..fresh
            }),
            Err(CancelRefusal::Closed)
        );
        assert_eq!(
            with(CancelFacts {
                by_author: false,
                ..fresh
            }),
            Err(CancelRefusal::NotYours)
        );
        assert_eq!(
            with(CancelFacts {
                withdrawn: true,
                ..fresh
            }),
            Err(CancelRefusal::NotYours)
        );
    }
}
