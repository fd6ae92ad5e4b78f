//! Which address is the visitor's: the socket peer, or a forwarded address from a trusted proxy.
//!
//! Forwarding headers are believed only when the direct peer is in `server.trusted_proxies`;
//! then the chain is walked from the right, skipping trusted hops, and the first untrusted
//! address is the client. The result is used for hashing and the country lookup, then dropped.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The visitor's address for a request from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut chain: Vec<IpAddr> = Vec::new();
        // RFC 7239 `Forwarded` takes precedence when present; `X-Forwarded-For` otherwise.
        for value in headers.get_all("forwarded") {
            let Ok(value) = value.to_str() else { continue };
            for element in value.split(',') {
                for pair in element.split(';') {
                    let Some((k, v)) = pair.trim().split_once('=') else {
                        continue;
                    };
                    if k.trim().eq_ignore_ascii_case("for") {
                        if let Some(ip) = parse_forwarded_node(v.trim()) {
                            chain.push(ip);
                        }
                    }
                }
            }
        }
        if chain.is_empty() {
            for value in headers.get_all("x-forwarded-for") {
                let Ok(value) = value.to_str() else { continue };
                chain.extend(
                    value
                        .split(',')
                        .filter_map(|s| parse_forwarded_node(s.trim())),
                );
            }
        }
        chain
            .iter()
            .rev()
            .copied()
            .map(canonical)
            .find(|ip| !self.trusts(*ip))
            // Every hop trusted: the leftmost is as close to the client as we can get.
            .or_else(|| chain.first().copied().map(canonical))
            .unwrap_or(peer)
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, as dual-stack sockets report them) become IPv4,
/// so that the same visitor hashes the same whichever way they arrived.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Parses `1.2.3.4`, `1.2.3.4:5678`, `"[2001:db8::1]:443"`, `2001:db8::1`.
fn parse_forwarded_node(s: &str) -> Option<IpAddr> {
    let s = s.trim_matches('"');
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, _port) = s.rsplit_once(':')?;
    host.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ])
    }

    #[test]
    fn untrusted_peer_headers_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            proxies().client_ip("198.51.100.7".parse().unwrap(), &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn trusted_peer_rightmost_untrusted_wins() {
        // A client can prepend anything; only what our proxies appended counts.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(
            proxies().client_ip("10.0.0.1".parse().unwrap(), &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_header_with_ports_and_v6() {
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.9",
        )]);
        assert_eq!(
            proxies().client_ip("::1".parse().unwrap(), &h),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("forwarded", "for=192.0.2.60:8080")]);
        assert_eq!(
            proxies().client_ip("10.1.1.1".parse().unwrap(), &h),
            "192.0.2.60".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn mapped_v4_is_v4_and_garbage_falls_back_to_peer() {
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(
            proxies().client_ip("::ffff:10.0.0.1".parse().unwrap(), &h),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            canonical("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }
}
