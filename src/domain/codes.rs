//! How many sign-in codes (the web view's 24-hour rule) go out: text messages cost the
//! practice money and a flood of them is harassment, and whoever holds one of a person's links
//! must not be able to use up the codes the person needs.

/// Codes one person may be sent in an hour, whoever asks.
pub const PER_PERSON_HOUR: u32 = 10;
/// Codes one client address may have sent to one person in an hour: well under the person's
/// own limit, so a link holder elsewhere leaves the person codes of their own.
pub const PER_CLIENT_HOUR: u32 = 3;

/// Whether another code may go out, given how many went to the person in the last hour, and
/// how many of those this client asked for; else why not (recorded in the audit trail).
pub fn may_send(person_hour: u32, client_hour: u32) -> Result<(), &'static str> {
    if client_hour >= PER_CLIENT_HOUR {
        return Err("client-hourly-limit");
    }
    if person_hour >= PER_PERSON_HOUR {
        return Err("hourly-limit");
    }
    Ok(())
}

/// The latest code made for one link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    pub created_at: i64,
    pub expires_at: i64,
    pub passed: bool,
}

/// Whether asking again from the same link is answered with the code already sent (nothing new
/// goes out): it was made less than `throttle_secs` ago and can still be used.
pub fn still_fresh(latest: Option<Latest>, throttle_secs: i64, now: i64) -> bool {
    latest.is_some_and(|c| !c.passed && c.expires_at > now && c.created_at > now - throttle_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_again_within_the_throttle_resends_nothing() {
        let code = Latest {
            created_at: 1_000,
            expires_at: 1_600,
            passed: false,
        };
        assert!(still_fresh(Some(code), 60, 1_059));
        assert!(
            !still_fresh(Some(code), 60, 1_060),
            "a minute later, a new one"
        );
        assert!(!still_fresh(
            Some(Latest {
                passed: true,
                ..code
            }),
            60,
            1_001
        ));
        assert!(!still_fresh(
            Some(Latest {
                expires_at: 1_001,
                ..code
            }),
            60,
            1_001
        ));
        assert!(!still_fresh(None, 60, 1_001));
    }

    #[test]
    fn a_link_holder_cannot_use_up_a_persons_codes() {
        assert_eq!(may_send(0, 0), Ok(()));
        assert_eq!(may_send(3, 3), Err("client-hourly-limit"));
        // Another client (the person on their own phone) still gets codes.
        assert_eq!(may_send(3, 0), Ok(()));
        assert_eq!(may_send(10, 0), Err("hourly-limit"));
    }
}
