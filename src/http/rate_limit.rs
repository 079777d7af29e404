//! Requests per API key (or per address, or per person on the web view), as a token bucket: a
//! key may spend `per_minute` requests at once and gets them back at `per_minute / 60` a
//! second. A client over it is answered 429 with `Retry-After`, so a runaway loop in a portal
//! cannot starve the daemon, nor a guesser try dates of birth at speed.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::ApiKeyId;

/// Buckets kept before full ones are forgotten (a full bucket is the same as none).
const MAX_BUCKETS: usize = 100_000;

/// The buckets of all keys.
pub struct RateLimit<K = ApiKeyId> {
    /// Requests a key may spend at once, and gets back over `window_secs`.
    per_minute: u32,
    window_secs: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq> RateLimit<K> {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> RateLimit<K> {
        RateLimit {
            per_minute,
            window_secs: 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `per_hour` at once, given back over an hour (0: no limit).
    pub fn per_hour(per_hour: u32) -> RateLimit<K> {
        RateLimit {
            per_minute: per_hour,
            window_secs: 3600.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` until one is back.
    pub fn take(&self, key: K) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let refill = capacity / self.window_secs;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, (tokens, last)| {
                *tokens + now.duration_since(*last).as_secs_f64() * refill < capacity
            });
        }
        let (tokens, last) = buckets.entry(key).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * refill).min(capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / refill).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_waiting() {
        let limit = RateLimit::<ApiKeyId>::new(3);
        let key = ApiKeyId(7);
        assert!(limit.take(key).is_ok());
        assert!(limit.take(key).is_ok());
        assert!(limit.take(key).is_ok());
        let wait = limit.take(key).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(
            limit.take(ApiKeyId(8)).is_ok(),
            "each key has its own bucket"
        );
        assert!(RateLimit::<ApiKeyId>::new(0).take(key).is_ok());
    }
}
