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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_holder_cannot_use_up_a_persons_codes() {
        assert_eq!(may_send(0, 0), Ok(()));
        assert_eq!(may_send(3, 3), Err("client-hourly-limit"));
        // Another client (the person on their own phone) still gets codes.
        assert_eq!(may_send(3, 0), Ok(()));
        assert_eq!(may_send(10, 0), Err("hourly-limit"));
    }
}
