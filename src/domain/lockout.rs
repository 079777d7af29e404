//! Failed identity checks on the web view, and the lockout they lead to.
//!
//! An attempt is counted *before* what was typed is compared: each check first reserves one
//! of the person's `web.max_failures` attempts, so a burst of concurrent guesses can never
//! compare more than that many, whatever their timing. A passed check gives the attempts back;
//! the last one failing locks the person out.
//!
//! A lock is temporary, longer each time it comes back (15 minutes, an hour, a day): whoever
//! holds a forwarded link can lock a patient out, but not for good. Staff are told when a
//! lock comes back (the first may be a patient unsure of the date's format), and can lift
//! one at once; a fresh link and a passed code lift a temporary one too.

/// How long the first, second and third (and later) locks last.
pub const BACKOFF_SECS: [i64; 3] = [15 * 60, 3600, 86_400];

/// How long lock number `n` (1 for the first) lasts.
pub fn lock_secs(n: u32) -> i64 {
    let i = usize::try_from(n.max(1) - 1).unwrap_or(usize::MAX);
    BACKOFF_SECS[i.min(BACKOFF_SECS.len() - 1)]
}

/// Whether staff are told about lock number `n`.
pub fn tell_staff(n: u32) -> bool {
    n >= 2
}

/// Where a person stands with the identity check, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Standing {
    /// Attempts reserved and not given back (failed, or still being compared).
    pub failed: u32,
    /// Locked out: since when, until when (`None`: until staff lift it).
    pub locked: Option<(i64, Option<i64>)>,
    /// Locks in a row (the back-off's step); a passed check or staff start it over.
    pub locks: u32,
}

impl Standing {
    /// Whether the person is locked out at `now`.
    pub fn locked_at(&self, now: i64) -> bool {
        self.locked
            .is_some_and(|(_, until)| until.is_none_or(|u| u > now))
    }

    /// The standing with a lock that ran out by `now` gone (its attempts given back; the
    /// count of locks kept, so the next one is longer).
    pub fn as_of(self, now: i64) -> Standing {
        match self.locked {
            Some(_) if !self.locked_at(now) => Standing {
                failed: 0,
                locked: None,
                ..self
            },
            _ => self,
        }
    }
}

/// What reserving an attempt gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// Compare now; this is attempt number `n` of `max`.
    Check { n: u32 },
    /// Locked out, until then (`None`: until staff lift it).
    Locked { until: Option<i64> },
    /// Every attempt is taken by checks still in progress: try again in a moment.
    Wait,
}

/// Reserves an attempt: the decision, and the standing to store.
pub fn reserve(s: Standing, max: u32, now: i64) -> (Reservation, Standing) {
    let s = s.as_of(now);
    if let Some((_, until)) = s.locked {
        return (Reservation::Locked { until }, s);
    }
    if s.failed >= max {
        return (Reservation::Wait, s);
    }
    let next = Standing {
        failed: s.failed + 1,
        ..s
    };
    (Reservation::Check { n: next.failed }, next)
}

/// A lock just made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewLock {
    pub until: i64,
    /// Tell the conversation's staff.
    pub tell_staff: bool,
}

/// After a reserved attempt failed: the standing to store, and the lock it made, if any (when
/// it was the last attempt and nothing locked meanwhile).
pub fn after_failure(s: Standing, max: u32, now: i64) -> (Standing, Option<NewLock>) {
    let s = s.as_of(now);
    if s.locked.is_some() || s.failed < max {
        return (s, None);
    }
    let n = s.locks + 1;
    let until = now + lock_secs(n);
    (
        Standing {
            failed: s.failed,
            locked: Some((now, Some(until))),
            locks: n,
        },
        Some(NewLock {
            until,
            tell_staff: tell_staff(n),
        }),
    )
}

/// After a passed check: everything starts over — unless a lock came meanwhile (a concurrent
/// attempt was the last one and failed), which the pass does not lift.
pub fn after_success(s: Standing, now: i64) -> Result<Standing, Option<i64>> {
    let s = s.as_of(now);
    match s.locked {
        Some((_, until)) => Err(until),
        None => Ok(Standing::default()),
    }
}

/// Whether a temporary lock may be lifted by a code passed from a link issued at `link_issued`
/// (one sent after the lock began: it reached the person's own mailbox or phone since).
pub fn code_lifts(s: Standing, link_issued: i64, now: i64) -> bool {
    let s = s.as_of(now);
    matches!(s.locked, Some((since, Some(_))) if link_issued > since)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_compares_at_most_max_attempts() {
        let mut s = Standing::default();
        let mut checks = 0;
        for _ in 0..10 {
            let (r, next) = reserve(s, 3, 1000);
            s = next;
            if matches!(r, Reservation::Check { .. }) {
                checks += 1;
            }
        }
        assert_eq!(checks, 3, "ten at once, three compared");
        // The three fail: locked for 15 minutes, staff not told yet.
        let mut lock = None;
        for _ in 0..3 {
            let (next, l) = after_failure(s, 3, 1000);
            s = next;
            lock = lock.or(l);
        }
        assert_eq!(
            lock,
            Some(NewLock {
                until: 1000 + 900,
                tell_staff: false
            })
        );
        assert!(s.locked_at(1000) && s.locked_at(1899) && !s.locked_at(1900));
        // A right answer arriving after the lock does not open it.
        assert_eq!(after_success(s, 1001), Err(Some(1900)));
        assert_eq!(
            reserve(s, 3, 1001).0,
            Reservation::Locked { until: Some(1900) }
        );
    }

    #[test]
    fn locks_grow_and_a_pass_starts_over() {
        let fail_thrice = |mut s: Standing, now: i64| {
            let mut made = None;
            for _ in 0..3 {
                s = reserve(s, 3, now).1;
                let (next, l) = after_failure(s, 3, now);
                s = next;
                made = made.or(l);
            }
            (s, made.unwrap())
        };
        let (s, first) = fail_thrice(Standing::default(), 0);
        assert_eq!(first.until, 900);
        let (s, second) = fail_thrice(s, 900);
        assert_eq!((second.until, second.tell_staff), (900 + 3600, true));
        let (s, third) = fail_thrice(s, 4500);
        assert_eq!(third.until, 4500 + 86_400);
        let (s, fourth) = fail_thrice(s, 4500 + 86_400);
        assert_eq!(fourth.until - (4500 + 86_400), 86_400, "a day at most");
        // After the lock, a pass starts everything over.
        let later = fourth.until;
        let s = reserve(s, 3, later).1;
        assert_eq!(after_success(s, later), Ok(Standing::default()));
    }

    #[test]
    fn a_fresh_link_and_a_code_lift_only_a_temporary_lock() {
        let locked = Standing {
            failed: 3,
            locked: Some((1000, Some(1900))),
            locks: 1,
        };
        assert!(code_lifts(locked, 1200, 1300));
        assert!(
            !code_lifts(locked, 900, 1300),
            "the link is older than the lock"
        );
        let by_staff = Standing {
            locked: Some((1000, None)),
            ..locked
        };
        assert!(!code_lifts(by_staff, 1200, 1300));
    }
}
