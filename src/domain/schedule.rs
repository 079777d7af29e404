//! Work that is due at a time rather than caused by a message: its kinds, and when each is
//! due next.
//!
//! A scheduled job is a kind, a key and a due time. The key makes it unique: whoever asks for
//! "housekeeping for the hour starting 14:00" — the instance that just ran the 13:00 one,
//! another instance, or this one restarting — asks for the same row, so a restart around the
//! due time never queues the work twice. Its effect happens at least once and is idempotent.

use super::retry::{Backoff, Retry};

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Hourly: deletes rows that only ever mattered for a while — web sessions long over,
    /// Idempotency-Keys past their day, the record of scheduled jobs done a week ago.
    Housekeeping,
}

impl JobKind {
    pub const ALL: [JobKind; 1] = [JobKind::Housekeeping];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Housekeeping => "housekeeping",
        }
    }

    pub fn parse(text: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// How often it runs, in seconds.
    pub fn period_secs(self) -> i64 {
        match self {
            JobKind::Housekeeping => 3600,
        }
    }

    /// The slot after `now`: its key (the slot's start, RFC 3339) and when it is due (then).
    pub fn next_after(self, now: i64) -> (String, i64) {
        let period = self.period_secs();
        let due = (now.div_euclid(period) + 1) * period;
        (crate::clock::rfc3339(due), due)
    }

    /// A failed run is tried again on this schedule; a run that failed this often is
    /// recorded as failed, and the next slot still comes.
    pub fn retry(self) -> Retry {
        Retry {
            backoff: Backoff::Steps(&[60, 300, 900]),
            max_attempts: Some(5),
        }
    }
}

/// How long rows are kept by housekeeping, in seconds.
pub mod keep {
    /// A web session, after it ended (or after the longest it may last).
    pub const SESSION_AFTER_END_SECS: i64 = 24 * 3600;
    /// The record of a scheduled job that ran.
    pub const JOB_DONE_SECS: i64 = 7 * 24 * 3600;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_slot_starts_at_the_next_hour_whatever_the_minute() {
        // 2026-12-07T14:00:00Z
        let hour = 1_796_652_000;
        for now in [hour, hour + 1, hour + 3599] {
            let (key, due) = JobKind::Housekeeping.next_after(now);
            assert_eq!(due, hour + 3600);
            assert_eq!(key, "2026-12-07T15:00:00Z");
        }
        assert_eq!(JobKind::parse("housekeeping"), Some(JobKind::Housekeeping));
        assert_eq!(JobKind::parse("nothing"), None);
    }
}
