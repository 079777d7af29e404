//! Which peers speak for others: a reverse proxy in front of the web view connects on behalf
//! of every patient, and says who in `X-Forwarded-For`. Only a proxy the configuration names
//! (`web.trusted_proxies`) is believed, and only for what it added itself.

use std::net::IpAddr;

use crate::domain::network::Network;

/// The proxies a door trusts (addresses or networks).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> TrustedProxies {
        TrustedProxies(networks)
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client a request comes from: the connection's address, unless that is a trusted
    /// proxy — then `X-Forwarded-For` (all its fields, as one list) read from the right, each
    /// address a proxy's own addition until the first that is not a trusted proxy: that one
    /// is the client. A proxy appends the address it saw, so what a client wrote itself sits
    /// to the left of it and is never reached. Anything unreadable stops the walk at the last
    /// address known good.
    pub fn client<'h>(&self, peer: IpAddr, forwarded: impl Iterator<Item = &'h str>) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            match parse_hop(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.contains(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// One `X-Forwarded-For` element: an address, possibly bracketed or with a port.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Ok(sock) = hop.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    hop.strip_prefix('[')
        .and_then(|h| h.split(']').next())
        .and_then(|h| h.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|n| n.parse().unwrap()).collect())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_a_trusted_proxy_is_believed() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("127.0.0.1"), ["203.0.113.7"].into_iter()),
            ip("127.0.0.1"),
            "without trusted proxies the header is ignored"
        );
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        assert_eq!(
            t.client(ip("198.51.100.2"), ["203.0.113.7"].into_iter()),
            ip("198.51.100.2"),
            "a stranger's header is ignored"
        );
        assert_eq!(
            t.client(ip("127.0.0.1"), ["203.0.113.7"].into_iter()),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn the_walk_is_from_the_right_and_stops_at_the_first_stranger() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        // The client wrote "1.2.3.4" itself; nginx appended what it saw; a second proxy too.
        assert_eq!(
            t.client(
                ip("127.0.0.1"),
                ["1.2.3.4, 203.0.113.7, 10.1.2.3"].into_iter()
            ),
            ip("203.0.113.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            t.client(ip("127.0.0.1"), ["1.2.3.4", "203.0.113.9"].into_iter()),
            ip("203.0.113.9")
        );
        // Ports and brackets are read; garbage stops the walk at the last good address.
        assert_eq!(
            t.client(ip("127.0.0.1"), ["[2001:db8::1]:443"].into_iter()),
            ip("2001:db8::1")
        );
        assert_eq!(
            t.client(ip("127.0.0.1"), ["1.2.3.4, nonsense"].into_iter()),
            ip("127.0.0.1")
        );
        // Only trusted proxies all the way: the leftmost is the best known.
        assert_eq!(
            t.client(ip("127.0.0.1"), ["10.9.9.9"].into_iter()),
            ip("10.9.9.9")
        );
    }
}
