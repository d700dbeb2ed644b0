//! The address a request comes from, for the audit trail and the per-address login limit.
//!
//! Behind a reverse proxy or load balancer (an ingress) every connection comes from the proxy,
//! and the client's own address is the one the proxy appended to `X-Forwarded-For`. Only the
//! proxies named in `BERTH_TRUSTED_PROXIES` are believed: anyone else could write any address
//! there, and so choose what the audit trail records or which rate-limit bucket they use.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed (none by default: the peer's address is the
/// client's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks: `10.0.0.0/8, 192.168.1.7`.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("'{s}' is neither an IP address nor a network (10.0.0.0/8)")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address: the peer's, unless the peer is a trusted proxy. Then
    /// `X-Forwarded-For` is read from the right (each proxy appends the address it was called
    /// from) and the first address that is not itself a trusted proxy is the client's; what
    /// stands left of it the client may have written. An entry that does not parse stops the
    /// walk at the last address read. The port of a forwarded address is unknown (0).
    pub fn client(&self, peer: SocketAddr, headers: &HeaderMap) -> SocketAddr {
        if !self.trusts(peer.ip()) {
            return peer;
        }
        let mut nearest = peer;
        // Several headers count as one list, in order.
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return nearest;
            };
            for entry in value.rsplit(',') {
                let Some(ip) = forwarded_ip(entry.trim()) else {
                    return nearest;
                };
                nearest = SocketAddr::new(ip, 0);
                if !self.trusts(ip) {
                    return nearest;
                }
            }
        }
        nearest
    }
}

/// `203.0.113.7`, `2001:db8::1`, and the forms some proxies write with a port:
/// `203.0.113.7:51234`, `[2001:db8::1]:51234`.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 40000)
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn client(trusted: &str, from: &str, values: &[&str]) -> String {
        let c = TrustedProxies::parse(trusted)
            .unwrap()
            .client(peer(from), &forwarded(values));
        if c.port() == 40000 {
            format!("{} (peer)", c.ip())
        } else {
            c.ip().to_string()
        }
    }

    #[test]
    fn nobody_trusted_means_the_peer() {
        assert_eq!(client("", "10.0.0.5", &["203.0.113.7"]), "10.0.0.5 (peer)");
    }

    #[test]
    fn an_untrusted_peer_cannot_name_another_address() {
        assert_eq!(
            client("10.0.0.0/8", "198.51.100.9", &["203.0.113.7"]),
            "198.51.100.9 (peer)"
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["203.0.113.7"]),
            "203.0.113.7"
        );
        // No header: the proxy itself.
        assert_eq!(client("10.0.0.0/8", "10.0.0.5", &[]), "10.0.0.5 (peer)");
    }

    #[test]
    fn what_the_client_wrote_left_of_its_address_is_ignored() {
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["1.2.3.4, 203.0.113.7"]),
            "203.0.113.7"
        );
        // Two proxies in a row, both trusted: the address before them.
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["1.2.3.4, 203.0.113.7, 10.1.2.3"]
            ),
            "203.0.113.7"
        );
        // Several headers are one list.
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["1.2.3.4", "203.0.113.7, 10.1.2.3"]
            ),
            "203.0.113.7"
        );
    }

    #[test]
    fn every_address_trusted_means_the_leftmost() {
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["10.9.9.9, 10.1.2.3"]),
            "10.9.9.9"
        );
    }

    #[test]
    fn ports_and_brackets_are_read_and_garbage_stops_the_walk() {
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["203.0.113.7:51234"]),
            "203.0.113.7"
        );
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["[2001:db8::1]:443"]),
            "2001:db8::1"
        );
        assert_eq!(
            client(
                "10.0.0.0/8",
                "10.0.0.5",
                &["203.0.113.7, unknown, 10.1.2.3"]
            ),
            "10.1.2.3"
        );
        assert_eq!(
            client("10.0.0.0/8", "10.0.0.5", &["unknown"]),
            "10.0.0.5 (peer)"
        );
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        assert_eq!(
            client("127.0.0.1", "::ffff:127.0.0.1", &["203.0.113.7"]),
            "203.0.113.7"
        );
    }

    #[test]
    fn the_setting_is_checked() {
        assert_eq!(
            TrustedProxies::parse(" ").unwrap(),
            TrustedProxies::default()
        );
        assert!(TrustedProxies::parse("10.0.0.0/8, 192.168.1.7, ::1").is_ok());
        let e = TrustedProxies::parse("10.0.0.0/8, proxy.internal").unwrap_err();
        assert!(e.contains("proxy.internal"), "{e}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
    }
}
