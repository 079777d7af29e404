//! Who may hold a connection to one of the daemon's doors (SMTP, the web view, the API): at
//! most `max_connections` at once, at most `max_connections_per_ip` from one address, and when
//! every slot is taken, an idle connection from the most crowded address gives way to the
//! newcomer. Each door has a table of its own, so no door can take another's room.
//!
//! Idle connections are the cheapest attack there is: two hundred of them, from one address
//! or from many, used to keep every well-behaved sender out for as long as the read timeout
//! allowed. A session that is waiting for a command (not receiving a message, not being
//! answered) is *idle*; so is an HTTP connection waiting for (or part-way through) a request
//! head. An address the door trusts as its proxy (`web.trusted_proxies`) has no share of its
//! own to exceed: every client behind it arrives from it. When the table is full, a newcomer takes the place of an idle session:
//!
//! 1. from an address holding at least two sessions more than the newcomer's own — the most
//!    crowded address first, its longest-idle session first — however briefly it has been
//!    idle: a crowd only ever displaces itself, and a sender from a quiet address always finds
//!    room while the crowd holds more than one connection per address;
//! 2. failing that, the session idle the longest, if for at least [`MIN_IDLE`], from an address
//!    holding more sessions than the newcomer's (many addresses with one idle connection each).
//!
//! The evicted session is told `421` and closed; a session that is actually sending a message
//! or being answered is never the one that goes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Under rule 2, a session idle for less than this is not evicted: a client between two
/// commands of one transaction is idle for milliseconds.
pub const MIN_IDLE: Duration = Duration::from_secs(2);

/// The connection table, shared by the listener and every session.
pub struct Slots {
    max_total: usize,
    max_per_ip: usize,
    epoch: Instant,
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    per_ip: HashMap<IpAddr, usize>,
    live: HashMap<u64, Arc<Shared>>,
    next_id: u64,
}

struct Shared {
    ip: IpAddr,
    /// Milliseconds since the table's epoch at which the session became idle; 0 while busy.
    idle_since: AtomicU64,
    evict: CancellationToken,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This address already holds its share.
    PerIp,
    /// Every slot is held by a session that is working.
    Full,
}

/// One admitted connection's place in the table; leaving the table when dropped.
pub struct Slot {
    id: u64,
    shared: Arc<Shared>,
    table: Option<Arc<Slots>>,
}

impl Slots {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max_total: max_total.max(1),
            max_per_ip: max_per_ip.max(1),
            epoch: Instant::now(),
            inner: Mutex::default(),
        })
    }

    fn now_ms(&self) -> u64 {
        // Never 0, which means "busy".
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// Admits a connection from `ip`, evicting an idle session from a more crowded address if
    /// the table is full.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        self.admit_from(ip, false)
    }

    /// Admits a connection; `proxy`: `ip` is a trusted proxy, not held to the per-address
    /// share (the table's total still holds).
    pub fn admit_from(self: &Arc<Self>, ip: IpAddr, proxy: bool) -> Result<Slot, Refused> {
        let mut t = self.table();
        let mine = t.per_ip.get(&ip).copied().unwrap_or(0);
        if mine >= self.max_per_ip && !proxy {
            return Err(Refused::PerIp);
        }
        // Sessions already told to go still count until they are gone, but no longer block.
        let leaving = t.live.values().filter(|s| s.evict.is_cancelled()).count();
        if t.live.len() - leaving >= self.max_total {
            let now = self.now_ms();
            let min_idle = MIN_IDLE.as_millis() as u64;
            let crowd = |s: &Shared| t.per_ip.get(&s.ip).copied().unwrap_or(0);
            // Idle sessions that may give way at all: (crowd of their address, idle since).
            let idle = t
                .live
                .values()
                .filter(|s| !s.evict.is_cancelled())
                .filter_map(|s| {
                    let since = s.idle_since.load(Ordering::Relaxed);
                    (since != 0).then_some((crowd(s), since, s))
                });
            let fair = idle
                .clone()
                .filter(|(crowd, _, _)| *crowd > mine + 1)
                .max_by_key(|(crowd, since, _)| (*crowd, std::cmp::Reverse(*since)));
            let longest = || {
                idle.filter(|(crowd, since, _)| {
                    *crowd > mine && now.saturating_sub(*since) >= min_idle
                })
                .min_by_key(|(_, since, _)| *since)
            };
            let victim = fair.or_else(longest).map(|(_, _, s)| s.clone());
            match victim {
                Some(v) => v.evict.cancel(),
                None => return Err(Refused::Full),
            }
        }
        t.next_id += 1;
        let id = t.next_id;
        let shared = Arc::new(Shared {
            ip,
            idle_since: AtomicU64::new(0),
            evict: CancellationToken::new(),
        });
        t.live.insert(id, shared.clone());
        *t.per_ip.entry(ip).or_default() += 1;
        Ok(Slot {
            id,
            shared,
            table: Some(self.clone()),
        })
    }

    /// The table. A panic elsewhere while it was held leaves it consistent (every change is
    /// one statement), so a poisoned lock is taken as it is rather than failing every later
    /// connection.
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections held now.
    pub fn len(&self) -> usize {
        self.table().live.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Slot {
    /// A slot in no table (tests, and sessions that cannot be evicted).
    pub fn detached() -> Slot {
        Slot {
            id: 0,
            shared: Arc::new(Shared {
                ip: IpAddr::from([0, 0, 0, 0]),
                idle_since: AtomicU64::new(0),
                evict: CancellationToken::new(),
            }),
            table: None,
        }
    }

    /// The session is waiting for a command (keeps the earliest moment if already idle).
    pub fn idle(&self) {
        let now = self.table.as_ref().map_or(1, |t| t.now_ms());
        let _ =
            self.shared
                .idle_since
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The session is receiving a command or a message, or being answered.
    pub fn busy(&self) {
        self.shared.idle_since.store(0, Ordering::Relaxed);
    }

    /// Completes when the table wants this slot back for a new connection.
    pub async fn evicted(&self) {
        self.shared.evict.cancelled().await
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let Some(table) = &self.table else {
            return;
        };
        let mut t = table.table();
        t.live.remove(&self.id);
        if let Some(n) = t.per_ip.get_mut(&self.shared.ip) {
            *n -= 1;
            if *n == 0 {
                t.per_ip.remove(&self.shared.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn per_address_and_total_limits() {
        let slots = Slots::new(3, 2);
        let a1 = slots.admit(ip(1)).unwrap();
        let _a2 = slots.admit(ip(1)).unwrap();
        assert_eq!(slots.admit(ip(1)).err(), Some(Refused::PerIp));
        let _b = slots.admit(ip(2)).unwrap();
        // Full, and nobody idle long enough: refused.
        assert_eq!(slots.admit(ip(3)).err(), Some(Refused::Full));
        drop(a1);
        assert_eq!(slots.len(), 2);
        let _c = slots.admit(ip(3)).unwrap();
        assert_eq!(slots.len(), 3);
    }

    /// Make every session of the table idle since long enough to be evicted.
    fn age(slots: &Slots) {
        for s in slots.inner.lock().unwrap().live.values() {
            s.idle_since.store(1, Ordering::Relaxed);
        }
        while slots.now_ms() < MIN_IDLE.as_millis() as u64 + 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A crowd that reconnects as fast as it is evicted only ever displaces itself; a sender
    /// from a quiet address always finds room.
    #[test]
    fn a_crowd_displaces_only_itself() {
        let slots = Slots::new(10, 10);
        let mut crowd: Vec<Slot> = (0..10).map(|_| slots.admit(ip(1)).unwrap()).collect();
        for s in &crowd {
            s.idle();
        }
        // The crowd's own address cannot evict itself to get more.
        assert_eq!(slots.admit(ip(1)).err(), Some(Refused::PerIp));
        // A quiet address gets in at once: the crowd's sessions need not be idle for long.
        let quiet = slots.admit(ip(2)).unwrap();
        quiet.idle();
        let evicted = crowd
            .iter()
            .filter(|s| s.shared.evict.is_cancelled())
            .count();
        assert_eq!(evicted, 1);
        crowd.retain(|s| !s.shared.evict.is_cancelled());
        // A second crowd address takes places from the first until the two are even, never
        // from the quiet one; then it is refused.
        let mut second = Vec::new();
        let refused = loop {
            match slots.admit(ip(3)) {
                Ok(s) => {
                    s.idle();
                    second.push(s);
                    crowd.retain(|s| !s.shared.evict.is_cancelled());
                }
                Err(e) => break e,
            }
        };
        assert_eq!(refused, Refused::Full);
        assert!(!quiet.shared.evict.is_cancelled());
        assert!(
            crowd.len().abs_diff(second.len()) <= 1,
            "{} {}",
            crowd.len(),
            second.len()
        );
        assert_eq!(crowd.len() + second.len() + 1, 10);
    }

    #[tokio::test]
    async fn the_longest_idle_session_gives_way() {
        let slots = Slots::new(2, 5);
        let old = slots.admit(ip(1)).unwrap();
        let busy = slots.admit(ip(2)).unwrap();
        age(&slots);
        busy.busy();
        let newcomer = slots.admit(ip(3)).unwrap();
        tokio::time::timeout(Duration::from_secs(1), old.evicted())
            .await
            .expect("the idle session is told to go");
        assert!(!busy.shared.evict.is_cancelled());
        // Until it has gone, the evicted one no longer blocks, but a busy table still does.
        assert_eq!(slots.admit(ip(4)).err(), Some(Refused::Full));
        drop(old);
        drop(newcomer);
        assert_eq!(slots.len(), 1);
    }
}
