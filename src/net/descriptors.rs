//! File descriptors: every connection a door accepts costs one, and when the process has none
//! left, every door stops at once — the SMTP listener included, whatever door the crowd came
//! through. So the doors' connection caps together must fit in the process's limit, with a
//! reserve left for the daemon's own work: the database and its journal, the relay, the IMAP
//! mailbox, DNS, webhooks and text messages, the log.
//!
//! At start the daemon raises its soft limit to the hard one (systemd gives services 1024 soft
//! and 524288 hard unless the unit says otherwise), then, if the caps still do not fit, lowers
//! them in proportion and says so. `check-config` warns about the same arithmetic.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for the daemon's own work, whatever the doors hold.
pub const RESERVE: u64 = 128;

/// What the unit file and the Debian package set `LimitNOFILE` to: room for the default caps
/// many times over.
pub const UNIT_LIMIT: u64 = 65_536;

/// The process's open-file limits: (soft, hard); `None` for unlimited.
pub fn limits() -> (Option<u64>, Option<u64>) {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    (current, maximum)
}

/// Raises the soft limit to the hard one; returns the soft limit in force afterwards.
pub fn raise_soft_limit() -> Option<u64> {
    let (soft, hard) = limits();
    if soft != hard {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: hard,
                maximum: hard,
            },
        );
    }
    limits().0
}

/// The doors' caps as they will be used under `limit` descriptors: unchanged when they fit
/// beside [`RESERVE`], else each lowered in proportion (at least 1 each). `None` as limit: no
/// limit.
pub fn fit(caps: &[usize], limit: Option<u64>) -> Vec<usize> {
    let Some(limit) = limit else {
        return caps.to_vec();
    };
    let room = limit.saturating_sub(RESERVE).max(caps.len() as u64);
    let wanted: u64 = caps.iter().map(|c| *c as u64).sum();
    if wanted <= room {
        return caps.to_vec();
    }
    caps.iter()
        .map(|c| ((*c as u64 * room / wanted) as usize).max(1))
        .collect()
}

/// Descriptors the caps need, reserve included.
pub fn needed(caps: &[usize]) -> u64 {
    caps.iter().map(|c| *c as u64).sum::<u64>() + RESERVE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_that_fit_are_kept_and_others_shrink_in_proportion() {
        assert_eq!(fit(&[200, 512, 128], Some(65_536)), vec![200, 512, 128]);
        assert_eq!(fit(&[200, 512, 128], None), vec![200, 512, 128]);
        let under = fit(&[200, 512, 128], Some(1024));
        assert!(
            under.iter().sum::<usize>() as u64 + RESERVE <= 1024,
            "{under:?}"
        );
        // In proportion: the web view keeps the largest share.
        assert!(under[1] > under[0] && under[0] > under[2], "{under:?}");
        // However small the limit, each door keeps a connection.
        assert_eq!(fit(&[200, 512, 128], Some(10)), vec![1, 1, 1]);
        assert_eq!(needed(&[200, 512, 128]), 968);
    }

    #[test]
    fn the_soft_limit_can_be_raised_to_the_hard_one() {
        let (_, hard) = limits();
        assert_eq!(raise_soft_limit(), hard);
    }
}
