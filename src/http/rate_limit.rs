//! Requests per API key, as a token bucket: a key may spend `per_minute` requests at once and
//! gets them back at `per_minute / 60` a second. A client over it is answered 429 with
//! `Retry-After`, so a runaway loop in a portal cannot starve the daemon.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::domain::ApiKeyId;

/// The buckets of all keys.
pub struct RateLimit {
    per_minute: u32,
    buckets: Mutex<HashMap<ApiKeyId, (f64, Instant)>>,
}

impl RateLimit {
    /// `per_minute` 0: no limit.
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket; `Err(seconds)` until one is back.
    pub fn take(&self, key: ApiKeyId) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(self.per_minute);
        let refill = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
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
        let limit = RateLimit::new(3);
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
        assert!(RateLimit::new(0).take(key).is_ok());
    }
}
