//! The bytes of message data all SMTP sessions may hold in memory at once.
//!
//! Each session may buffer up to the size limit, and there may be hundreds of sessions: the
//! product of the two is far more memory than a small server has. So sessions draw the bytes
//! they buffer from one shared budget, in [`CHUNK`]s, as the message arrives, and give them
//! back when the message has been handled. A session that cannot draw more reads the rest of
//! its message without keeping it and answers `452 4.3.1`: the sender tries again later, and
//! the daemon never runs out of memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in units of this many bytes.
pub const CHUNK: usize = 64 * 1024;

/// The shared budget; cheap to clone.
#[derive(Clone)]
pub struct DataBudget {
    units: Arc<Semaphore>,
}

/// Bytes drawn from the budget by one session, returned when dropped.
#[derive(Default)]
pub struct Drawn {
    permit: Option<OwnedSemaphorePermit>,
}

impl DataBudget {
    /// A budget of `bytes` (rounded up to whole chunks, at least one).
    pub fn new(bytes: u64) -> DataBudget {
        let units = bytes
            .div_ceil(CHUNK as u64)
            .clamp(1, u64::from(u32::MAX >> 4)) as usize;
        DataBudget {
            units: Arc::new(Semaphore::new(units)),
        }
    }

    /// Draws enough for `needed` bytes in all into `drawn`; false when the budget is spent
    /// (nothing more is drawn then).
    pub fn cover(&self, drawn: &mut Drawn, needed: usize) -> bool {
        let have = drawn.permit.as_ref().map_or(0, |p| p.num_permits());
        let want = needed.div_ceil(CHUNK);
        if want <= have {
            return true;
        }
        let Ok(more) = self
            .units
            .clone()
            .try_acquire_many_owned((want - have) as u32)
        else {
            return false;
        };
        match &mut drawn.permit {
            Some(p) => p.merge(more),
            None => drawn.permit = Some(more),
        }
        true
    }

    /// Bytes not drawn by anyone now.
    pub fn available(&self) -> usize {
        self.units.available_permits() * CHUNK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_in_chunks_and_gives_back() {
        let budget = DataBudget::new(4 * CHUNK as u64);
        let mut a = Drawn::default();
        assert!(budget.cover(&mut a, 1));
        assert!(budget.cover(&mut a, CHUNK + 1));
        assert_eq!(budget.available(), 2 * CHUNK);
        let mut b = Drawn::default();
        assert!(budget.cover(&mut b, 2 * CHUNK));
        assert!(!budget.cover(&mut b, 3 * CHUNK), "spent");
        assert_eq!(budget.available(), 0);
        drop(a);
        assert_eq!(budget.available(), 2 * CHUNK);
        assert!(budget.cover(&mut b, 3 * CHUNK));
    }
}
