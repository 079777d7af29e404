//! API requests sent with an `Idempotency-Key`: when one still "in progress" is given up.
//!
//! A request whose body arrived is carried out to its end even if its client leaves, so "in
//! progress" normally means "being answered this moment". Only a process that died mid-request
//! leaves one behind; after this long it is taken as not done, and the key may be used again.

/// Longer than any request takes (its body's deadline and its handler's work included).
pub const ABANDONED_AFTER_SECS: i64 = 120;

/// Whether a request begun at `started` and still unanswered at `now` was abandoned.
pub fn abandoned(started: i64, now: i64) -> bool {
    now - started >= ABANDONED_AFTER_SECS
}

#[cfg(test)]
mod tests {
    #[test]
    fn in_progress_is_given_up_only_after_any_request_would_have_ended() {
        assert!(!super::abandoned(1000, 1000 + 119));
        assert!(super::abandoned(1000, 1000 + 120));
    }
}
