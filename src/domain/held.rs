//! How much mail waits in the held queue: held mail is kept whole, sealed, until a person
//! decides, so a stranger who can make Sealpost hold what they send (thousands of header lines
//! to postmaster, a two-mailbox `From:` with a forwarded reply address) could fill the queue
//! and the disk. Each source has a quota of messages waiting — per client address, per
//! sender domain, per reply address — and the queue one in all (messages and bytes). A message
//! over a quota is refused with a temporary error: the sender's server keeps it and tries
//! again later, so nothing acknowledged is dropped and nothing is lost.

/// The quotas (`[held]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_client: u64,
    pub per_sender_domain: u64,
    pub per_reply_address: u64,
    pub total: u64,
    pub total_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_client: 100,
            per_sender_domain: 1000,
            per_reply_address: 20,
            total: 10_000,
            total_bytes: 1 << 30,
        }
    }
}

/// What waits now, from this message's sources (`None`: the message has no such source, as
/// mail over IMAP has no client address, or a trusted relay's is everyone's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    pub from_client: Option<u64>,
    pub from_sender_domain: Option<u64>,
    pub for_reply_address: Option<u64>,
    pub total: u64,
    pub total_bytes: u64,
}

/// Which quota is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    Client,
    SenderDomain,
    ReplyAddress,
    Total,
}

impl Quota {
    pub fn as_str(self) -> &'static str {
        match self {
            Quota::Client => "client",
            Quota::SenderDomain => "sender-domain",
            Quota::ReplyAddress => "reply-address",
            Quota::Total => "total",
        }
    }
}

/// The quota a message of `size` bytes would exceed, if any.
pub fn full(w: &Waiting, l: &Limits, size: u64) -> Option<Quota> {
    let over = |n: Option<u64>, max: u64| n.is_some_and(|n| n >= max);
    if over(w.for_reply_address, l.per_reply_address) {
        return Some(Quota::ReplyAddress);
    }
    if over(w.from_client, l.per_client) {
        return Some(Quota::Client);
    }
    if over(w.from_sender_domain, l.per_sender_domain) {
        return Some(Quota::SenderDomain);
    }
    if w.total >= l.total || w.total_bytes.saturating_add(size) > l.total_bytes {
        return Some(Quota::Total);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_has_its_quota_and_the_queue_one_in_all() {
        let l = Limits {
            per_client: 2,
            per_sender_domain: 3,
            per_reply_address: 1,
            total: 10,
            total_bytes: 1000,
        };
        let w = Waiting::default();
        assert_eq!(full(&w, &l, 10), None);
        let w1 = Waiting {
            from_client: Some(2),
            ..w
        };
        assert_eq!(full(&w1, &l, 10), Some(Quota::Client));
        let w2 = Waiting {
            for_reply_address: Some(1),
            ..w
        };
        assert_eq!(full(&w2, &l, 10), Some(Quota::ReplyAddress));
        let w3 = Waiting {
            from_sender_domain: Some(3),
            ..w
        };
        assert_eq!(full(&w3, &l, 10), Some(Quota::SenderDomain));
        assert_eq!(
            full(&Waiting { total: 10, ..w }, &l, 10),
            Some(Quota::Total)
        );
        assert_eq!(
            full(
                &Waiting {
                    total_bytes: 995,
                    ..w
                },
                &l,
                10
            ),
            Some(Quota::Total)
        );
        // No client address (IMAP, a trusted relay): that quota does not apply.
        assert_eq!(
            full(
                &Waiting {
                    from_client: None,
                    ..w
                },
                &l,
                10
            ),
            None
        );
    }
}
