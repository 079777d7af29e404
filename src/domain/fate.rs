//! What becomes of a message that came in and cannot be filed: the one rule behind "nothing
//! a person writes is lost".
//!
//! After Sealpost acknowledges a message (SMTP `250`, an IMAP move), the message is filed,
//! held (sealed with its reason, for a person to release or reject), or ignored for a machine
//! reason (an auto-reply, a delivery report, a loop, a duplicate) — nothing else. What cannot
//! be filed is either refused while the SMTP transaction is still open — the sender's own
//! server then tells them, with their text — or held. Over IMAP nothing can be refused any
//! more: it is held, or, when no reply address of ours verified (a forged token, none at all),
//! ignored with that reason and left in the IMAP rejected folder.
//!
//! With several recipients in one SMTP transaction the one answer after `DATA` is for all of
//! them: a message is refused only when it would be refused for every one, and as the pipeline
//! decides for the first reply address, several recipients turn a refusal into a hold.

use super::{HoldReason, NoticeReason, Via};

/// Why a message cannot be filed as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfiled {
    /// Not a message at all.
    Malformed,
    /// No reply address of ours verified, and nothing else names a thread.
    NoReplyAddress,
    /// Written to postmaster: a person (or a program) wants the mail system's operator.
    ToPostmaster,
    /// `From:` is not the reply address's participant (a forwarded notification answered by
    /// someone else).
    NotTheParticipant,
    /// The participant was removed from the conversation while the message was on its way.
    ParticipantRemoved,
    /// Email replies are not taken in this conversation (secure mode, or the participant does
    /// not receive content by email).
    SecureThread,
    /// Staff closed the conversation.
    ThreadClosed,
    /// The reply address's signature verifies but its lifetime is over; `authenticated`:
    /// the sender proved to be the participant (DMARC, or trusted results, passed).
    TokenExpired { authenticated: bool },
    /// The sender did not authenticate as the participant's domain.
    NotAuthenticated,
    /// Only a Message-ID linked it to a thread, and the sender did not authenticate.
    LinkedByReferences,
    /// `From:` names more than one mailbox.
    MultipleFrom,
    /// A structure no person's reply has.
    TooComplex,
    /// Nothing new was written.
    EmptyReply,
    /// Handling it failed (a defect, caught).
    ProcessingFailed,
}

/// An SMTP refusal after `DATA`: the reply code, its enhanced status and the text the
/// sender's server passes on to the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub status: &'static str,
    pub text: &'static str,
}

/// What becomes of a message that cannot be filed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Refused in the SMTP transaction (never after acknowledging it).
    Refuse {
        reason: &'static str,
        refusal: Refusal,
    },
    /// Kept sealed for a person to decide; `notice`: the content-free notice its (verified)
    /// participant gets, if any.
    Hold {
        reason: HoldReason,
        notice: Option<NoticeReason>,
    },
    /// Acknowledged and recorded with its reason, nothing kept: only for mail no reply address
    /// of ours verified, over IMAP (where it stays in the rejected folder).
    Ignore { reason: &'static str },
}

impl Fate {
    /// Whether the door acknowledges the message (SMTP `250`, IMAP move).
    pub fn acknowledged(&self) -> bool {
        !matches!(self, Fate::Refuse { .. })
    }
}

impl Unfiled {
    /// The word the ledger and the log record.
    pub fn reason(self) -> &'static str {
        match self {
            Unfiled::Malformed => "malformed",
            Unfiled::NoReplyAddress => "no-valid-token",
            Unfiled::ToPostmaster => "postmaster",
            Unfiled::NotTheParticipant => "sender-mismatch",
            Unfiled::ParticipantRemoved => "participant-removed",
            Unfiled::SecureThread => "secure-thread",
            Unfiled::ThreadClosed => "thread-closed",
            Unfiled::TokenExpired { .. } => "token-expired",
            Unfiled::NotAuthenticated => "auth-failed",
            Unfiled::LinkedByReferences => "linked-by-references",
            Unfiled::MultipleFrom => "multiple-from",
            Unfiled::TooComplex => "too-complex",
            Unfiled::EmptyReply => "empty-reply",
            Unfiled::ProcessingFailed => "processing-failed",
        }
    }

    /// The refusal, where one is right for this reason: a definite answer that the sender can
    /// act on (their own server returns their text to them), about mail that is not a
    /// participant's reply to an open conversation. Everything else a person may have written
    /// to the practice is held.
    fn refusal(self) -> Option<Refusal> {
        let r = |code, status, text| Some(Refusal { code, status, text });
        match self {
            Unfiled::Malformed => r(550, "5.6.0", "This is not a valid email message"),
            Unfiled::NoReplyAddress => r(550, "5.1.1", "No reply address here for this message"),
            Unfiled::NotTheParticipant => r(
                550,
                "5.7.1",
                "Only the person this conversation was sent to can reply to it",
            ),
            Unfiled::ParticipantRemoved => r(
                550,
                "5.1.1",
                "This reply address is no longer part of the conversation",
            ),
            Unfiled::TokenExpired {
                authenticated: false,
            } => r(
                550,
                "5.1.1",
                "This reply address has expired; please contact the sender another way",
            ),
            _ => None,
        }
    }

    /// The hold, and the notice its participant gets (only ever where the participant was
    /// verified: a notice to a forged sender's victim would be mail on a stranger's say-so).
    fn hold(self) -> Fate {
        let (reason, notice) = match self {
            Unfiled::Malformed => (HoldReason::Malformed, None),
            Unfiled::NoReplyAddress => (HoldReason::Unaddressed, None),
            Unfiled::ToPostmaster => (HoldReason::ToPostmaster, None),
            Unfiled::NotTheParticipant => (HoldReason::SenderMismatch, None),
            Unfiled::ParticipantRemoved => (HoldReason::ParticipantRemoved, None),
            Unfiled::SecureThread => (HoldReason::SecureThread, Some(NoticeReason::SecureThread)),
            Unfiled::ThreadClosed => (HoldReason::ThreadClosed, Some(NoticeReason::ThreadClosed)),
            Unfiled::TokenExpired { authenticated } => (
                HoldReason::TokenExpired,
                authenticated.then_some(NoticeReason::TokenExpired),
            ),
            Unfiled::NotAuthenticated => (HoldReason::AuthFailed, None),
            Unfiled::LinkedByReferences => (HoldReason::LinkedByReferences, None),
            Unfiled::MultipleFrom => (HoldReason::MultipleFrom, None),
            Unfiled::TooComplex => (HoldReason::TooComplex, None),
            Unfiled::EmptyReply => (HoldReason::EmptyReply, Some(NoticeReason::EmptyReply)),
            Unfiled::ProcessingFailed => (HoldReason::ProcessingFailed, None),
        };
        Fate::Hold { reason, notice }
    }
}

/// What becomes of a message that cannot be filed, by why, through which door, with how many
/// recipients in its envelope (SMTP; the IMAP door passes 1).
pub fn fate(why: Unfiled, door: Via, recipients: usize) -> Fate {
    match (door, why.refusal()) {
        (Via::Smtp, Some(refusal)) if recipients <= 1 => Fate::Refuse {
            reason: why.reason(),
            refusal,
        },
        // Over IMAP nothing can be refused: mail no reply address of ours names is left where
        // the mailbox's rejected folder keeps it.
        (Via::Imap, _) if why == Unfiled::NoReplyAddress => Fate::Ignore {
            reason: why.reason(),
        },
        _ => why.hold(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: &[Unfiled] = &[
        Unfiled::Malformed,
        Unfiled::NoReplyAddress,
        Unfiled::ToPostmaster,
        Unfiled::NotTheParticipant,
        Unfiled::ParticipantRemoved,
        Unfiled::SecureThread,
        Unfiled::ThreadClosed,
        Unfiled::TokenExpired {
            authenticated: true,
        },
        Unfiled::TokenExpired {
            authenticated: false,
        },
        Unfiled::NotAuthenticated,
        Unfiled::LinkedByReferences,
        Unfiled::MultipleFrom,
        Unfiled::TooComplex,
        Unfiled::EmptyReply,
        Unfiled::ProcessingFailed,
    ];

    #[test]
    fn what_is_acknowledged_is_held_or_ignored_for_a_stated_reason() {
        for why in EVERY {
            for door in [Via::Smtp, Via::Imap] {
                for recipients in 1..=3 {
                    let f = fate(*why, door, recipients);
                    match f {
                        Fate::Refuse { .. } => {
                            assert_eq!(door, Via::Smtp, "{why:?}: IMAP cannot refuse");
                            assert_eq!(recipients, 1, "{why:?}: refused for everyone");
                        }
                        Fate::Ignore { reason } => {
                            assert_eq!(door, Via::Imap);
                            assert_eq!(reason, "no-valid-token");
                        }
                        Fate::Hold { .. } => {}
                    }
                }
            }
        }
    }

    #[test]
    fn a_person_writing_to_an_open_or_closed_conversation_is_never_refused() {
        for why in [
            Unfiled::SecureThread,
            Unfiled::ThreadClosed,
            Unfiled::NotAuthenticated,
            Unfiled::EmptyReply,
            Unfiled::ProcessingFailed,
            Unfiled::TokenExpired {
                authenticated: true,
            },
        ] {
            assert!(
                matches!(fate(why, Via::Smtp, 1), Fate::Hold { .. }),
                "{why:?}"
            );
        }
        // The expired, authenticated reply gets the notice that says how to reach the
        // practice; unauthenticated, it is refused and nobody is written to.
        assert_eq!(
            fate(
                Unfiled::TokenExpired {
                    authenticated: true
                },
                Via::Smtp,
                1
            ),
            Fate::Hold {
                reason: HoldReason::TokenExpired,
                notice: Some(NoticeReason::TokenExpired)
            }
        );
        assert!(
            !fate(
                Unfiled::TokenExpired {
                    authenticated: false
                },
                Via::Smtp,
                1
            )
            .acknowledged()
        );
        // Unauthenticated over IMAP: held, and nobody is told.
        assert_eq!(
            fate(
                Unfiled::TokenExpired {
                    authenticated: false
                },
                Via::Imap,
                1
            ),
            Fate::Hold {
                reason: HoldReason::TokenExpired,
                notice: None
            }
        );
    }
}
