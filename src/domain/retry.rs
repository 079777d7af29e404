//! When failed background work is tried again, and when it is given up: one rule for every
//! durable queue (notifications, webhook deliveries, text messages, scheduled jobs), each with
//! its own schedule.
//!
//! Pure: the jitter is an argument (a number in [0, 1)), so every schedule can be pinned step
//! by step in tests; the workers draw it at random.

/// How long to wait before the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// `base · 2^(failures − 1)`, capped at `max_secs`, times a factor in [0.75, 1.25) drawn
    /// from the jitter, so that a relay that comes back is not met by every retry at once.
    Exponential { base_secs: u64, max_secs: u64 },
    /// Fixed delays after the 1st, 2nd, … failure; the last repeats. Published schedules
    /// (receivers and providers plan around them): no jitter.
    Steps(&'static [i64]),
}

impl Backoff {
    /// Seconds to wait after `failures` failures (1 after the first).
    pub fn delay_secs(self, failures: u32, jitter: f64) -> i64 {
        match self {
            Backoff::Exponential {
                base_secs,
                max_secs,
            } => {
                let nominal = base_secs
                    .saturating_mul(1u64 << failures.saturating_sub(1).min(30))
                    .min(max_secs);
                let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
                ((nominal as f64) * factor).round().max(1.0) as i64
            }
            Backoff::Steps(steps) => {
                let index = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX);
                steps.get(index).or(steps.last()).copied().unwrap_or(60)
            }
        }
    }
}

/// A queue's whole retry rule: its backoff, and what ends the retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub backoff: Backoff,
    /// Attempts in all, the first included; `None`: no limit but the deadline.
    pub max_attempts: Option<u32>,
}

/// What becomes of work whose attempt just failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    RetryAt(i64),
    GiveUp,
}

impl Retry {
    /// After the `failures`-th failure at `now`: retried at a later time, unless the failure
    /// was `permanent`, the attempts are used up, or the next attempt would come after
    /// `last_moment` (the last time an attempt is still of use: a code's expiry, the end of a
    /// webhook's retry window).
    pub fn after_failure(
        self,
        failures: u32,
        now: i64,
        last_moment: Option<i64>,
        permanent: bool,
        jitter: f64,
    ) -> Next {
        if permanent || self.max_attempts.is_some_and(|max| failures >= max) {
            return Next::GiveUp;
        }
        let at = now + self.backoff.delay_secs(failures, jitter);
        if last_moment.is_some_and(|last| at > last) {
            return Next::GiveUp;
        }
        Next::RetryAt(at)
    }
}

/// A jitter drawn at random, for the workers.
pub fn random_jitter() -> f64 {
    f64::from(u32::from_be_bytes(crate::crypto::random_bytes::<4>())) / f64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_doubles_up_to_its_cap_within_a_quarter_either_way() {
        let b = Backoff::Exponential {
            base_secs: 60,
            max_secs: 6 * 3600,
        };
        let middle: Vec<i64> = (1..=10).map(|n| b.delay_secs(n, 0.5)).collect();
        assert_eq!(
            middle,
            [60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600]
        );
        assert_eq!(b.delay_secs(1, 0.0), 45);
        assert_eq!(b.delay_secs(1, 1.0), 75);
        assert_eq!(
            b.delay_secs(64, 0.5),
            21600,
            "no overflow, however many failures"
        );
    }

    #[test]
    fn steps_repeat_their_last() {
        let b = Backoff::Steps(&[5, 15, 30]);
        let d: Vec<i64> = (1..=5).map(|n| b.delay_secs(n, 0.9)).collect();
        assert_eq!(d, [5, 15, 30, 30, 30]);
    }

    #[test]
    fn retrying_ends_at_the_limit_the_deadline_or_a_permanent_failure() {
        let r = Retry {
            backoff: Backoff::Steps(&[10]),
            max_attempts: Some(3),
        };
        assert_eq!(
            r.after_failure(1, 100, None, false, 0.0),
            Next::RetryAt(110)
        );
        assert_eq!(
            r.after_failure(2, 100, None, false, 0.0),
            Next::RetryAt(110)
        );
        assert_eq!(r.after_failure(3, 100, None, false, 0.0), Next::GiveUp);
        assert_eq!(r.after_failure(1, 100, None, true, 0.0), Next::GiveUp);
        assert_eq!(
            r.after_failure(1, 100, Some(110), false, 0.0),
            Next::RetryAt(110)
        );
        assert_eq!(r.after_failure(1, 100, Some(109), false, 0.0), Next::GiveUp);
    }
}
