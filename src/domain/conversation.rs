//! Who reads a conversation together. A practice writes to each patient in a conversation of
//! their own: a message to several patients is several conversations, so that none of them
//! reads another's name or answer. A conversation shared by several people outside the
//! practice (a family, a couple) is made so on purpose, recorded, and shown to each of them.

/// One recipient of a new message, as the rule needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipient {
    /// Someone of the practice (by their role in the message, or their directory entry).
    pub staff: bool,
}

/// How the recipients of a new message are split into conversations: each list holds the
/// indexes of the recipients of one conversation. Staff are in every one; everyone else gets
/// their own, unless `shared`.
pub fn split(recipients: &[Recipient], shared: bool) -> Vec<Vec<usize>> {
    let staff: Vec<usize> = (0..recipients.len())
        .filter(|i| recipients[*i].staff)
        .collect();
    let outside: Vec<usize> = (0..recipients.len())
        .filter(|i| !recipients[*i].staff)
        .collect();
    if shared || outside.len() <= 1 {
        return vec![(0..recipients.len()).collect()];
    }
    outside
        .into_iter()
        .map(|o| {
            let mut one: Vec<usize> = staff.iter().copied().chain([o]).collect();
            one.sort_unstable();
            one
        })
        .collect()
}

/// Whether a conversation of `outside` people outside the practice is shared.
pub fn is_shared(outside: usize) -> bool {
    outside > 1
}

/// Why someone may not be added to a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AddRefusal {
    #[error(
        "the conversation already has someone outside the practice; adding another makes it a \
         shared conversation, in which each reads everything: say so (--shared, or \"shared\": \
         true)"
    )]
    WouldShare,
}

/// Whether a newcomer may join a conversation that has `outside` active participants outside
/// the practice; `Ok(true)`: the conversation becomes (or stays) shared.
pub fn may_add(outside: usize, newcomer_is_staff: bool, shared: bool) -> Result<bool, AddRefusal> {
    if newcomer_is_staff || outside == 0 {
        return Ok(false);
    }
    if shared {
        Ok(true)
    } else {
        Err(AddRefusal::WouldShare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATIENT: Recipient = Recipient { staff: false };
    const STAFF: Recipient = Recipient { staff: true };

    #[test]
    fn each_patient_gets_a_conversation_of_their_own() {
        assert_eq!(split(&[PATIENT], false), vec![vec![0]]);
        assert_eq!(split(&[PATIENT, PATIENT], false), vec![vec![0], vec![1]]);
        // A colleague of the practice copied in is in each of them.
        assert_eq!(
            split(&[PATIENT, STAFF, PATIENT], false),
            vec![vec![0, 1], vec![1, 2]]
        );
        // Shared on purpose: one conversation.
        assert_eq!(split(&[PATIENT, PATIENT], true), vec![vec![0, 1]]);
        // Only staff: one conversation.
        assert_eq!(split(&[STAFF, STAFF], false), vec![vec![0, 1]]);
    }

    #[test]
    fn a_second_outsider_needs_the_conversation_shared() {
        assert_eq!(may_add(0, false, false), Ok(false));
        assert_eq!(may_add(1, true, false), Ok(false));
        assert_eq!(may_add(1, false, false), Err(AddRefusal::WouldShare));
        assert_eq!(may_add(1, false, true), Ok(true));
        assert!(is_shared(2) && !is_shared(1));
    }
}
