//! What a trusted reverse proxy may tell us: the visitor's address and whether the browser came
//! over TLS. Nothing else in tally reads forwarding headers.
//!
//! Forwarding headers are believed only when the direct peer is in `server.trusted_proxies`;
//! then the chain is walked from the right, skipping trusted hops, and the first untrusted
//! address is the client. The result is used for hashing and the country lookup, then dropped.

use std::net::IpAddr;

use hyper::header::{HeaderName, FORWARDED};
use hyper::HeaderMap;
use ipnet::IpNet;

/// As constants: looking a header up by `&str` parses the name on every request.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// The `server.trusted_proxies` CIDR blocks.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self { nets }
    }

    /// The configured blocks (for the privacy report).
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// Whether a trusted proxy says the browser reached it over TLS (`X-Forwarded-Proto`, or
    /// `proto=` in `Forwarded`). From any other peer: no.
    pub fn forwarded_https(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        if !self.trusts(peer) {
            return false;
        }
        let xfp = headers
            .get(X_FORWARDED_PROTO)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        let fwd = headers
            .get(FORWARDED)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split([';', ','])
                    .filter_map(|kv| kv.trim().split_once('='))
                    .any(|(k, v)| {
                        k.eq_ignore_ascii_case("proto")
                            && v.trim_matches('"').eq_ignore_ascii_case("https")
                    })
            });
        xfp || fwd
    }

    /// The visitor's address for a request from `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // RFC 7239 `Forwarded` takes precedence when it names any hop; `X-Forwarded-For`
        // otherwise. Both are walked from the right (the hop nearest to us) without collecting.
        let forwarded = headers
            .get_all(FORWARDED)
            .iter()
            .rev()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.rsplit(','))
            .flat_map(|element| element.rsplit(';'))
            .filter_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_forwarded_node(v.trim()))?
            });
        if let Some(ip) = self.client_of_chain(forwarded) {
            return ip;
        }
        let forwarded_for = headers
            .get_all(X_FORWARDED_FOR)
            .iter()
            .rev()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.rsplit(','))
            .filter_map(|s| parse_forwarded_node(s.trim()));
        self.client_of_chain(forwarded_for).unwrap_or(peer)
    }

    /// Given a forwarding chain from right to left: the first address not trusted; when every
    /// hop is trusted, the leftmost (as close to the client as we can get); `None` when empty.
    fn client_of_chain(&self, right_to_left: impl Iterator<Item = IpAddr>) -> Option<IpAddr> {
        let mut leftmost = None;
        for ip in right_to_left.map(canonical) {
            if !self.trusts(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        leftmost
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
    fn several_header_lines_are_one_chain_and_all_trusted_gives_the_leftmost() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.5, 10.0.0.6"),
        ]);
        assert_eq!(
            proxies().client_ip("10.0.0.1".parse().unwrap(), &h),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        let h = headers(&[("x-forwarded-for", "10.0.0.7, 10.0.0.5")]);
        assert_eq!(
            proxies().client_ip("10.0.0.1".parse().unwrap(), &h),
            "10.0.0.7".parse::<IpAddr>().unwrap()
        );
        // A Forwarded header without any `for=` leaves the decision to X-Forwarded-For.
        let h = headers(&[
            ("forwarded", "proto=https;by=10.0.0.2"),
            ("x-forwarded-for", "203.0.113.10"),
        ]);
        assert_eq!(
            proxies().client_ip("10.0.0.1".parse().unwrap(), &h),
            "203.0.113.10".parse::<IpAddr>().unwrap()
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
