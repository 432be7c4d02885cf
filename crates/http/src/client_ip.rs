//! Which address a request comes from, for per-client limits.
//!
//! By default that is the TCP peer. Behind a reverse proxy every request
//! comes from the proxy, so with `TRUST_FORWARDED_FOR=true` the address is
//! read from `X-Forwarded-For` instead: walking from the right (the hop the
//! proxy itself appended) past our own infrastructure (loopback, private
//! and link-local addresses), the first address that is not ours is the
//! client. Hops further left were written by the client and could be
//! forged, so they are only used when every hop is internal.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::HttpRequest;
use actix_web::dev::ServiceRequest;

/// The key for requests whose peer is unknown (only in-process tests).
const UNKNOWN: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The client's address for rate limiting.
pub fn client_ip(req: &ServiceRequest, trust_forwarded_for: bool) -> IpAddr {
    request_client_ip(req.request(), trust_forwarded_for)
}

/// The same address, from a handler (a session records where it started);
/// `None` when the peer is unknown.
pub fn session_client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> Option<IpAddr> {
    Some(request_client_ip(req, trust_forwarded_for)).filter(|ip| *ip != UNKNOWN)
}

fn request_client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> IpAddr {
    let peer = req.peer_addr().map_or(UNKNOWN, |addr| addr.ip());
    if !trust_forwarded_for {
        return peer;
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    from_forwarded_for(&forwarded).unwrap_or(peer)
}

/// The first untrusted hop of an `X-Forwarded-For` list, read right to left.
fn from_forwarded_for(hops: &[&str]) -> Option<IpAddr> {
    let parsed: Vec<IpAddr> = hops.iter().filter_map(|hop| parse_hop(hop)).collect();
    parsed
        .iter()
        .rev()
        .find(|ip| !is_internal(ip))
        .or_else(|| parsed.first())
        .copied()
}

/// One hop: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// Addresses of our own network: proxies and load balancers live here.
fn is_internal(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                // fc00::/7 unique local, fe80::/10 link local
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn the_peer_is_the_client_unless_forwarding_is_trusted() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "198.51.100.1"))
            .to_srv_request();
        assert_eq!(client_ip(&req, false), ip("203.0.113.9"));
        assert_eq!(client_ip(&req, true), ip("198.51.100.1"));
    }

    #[test]
    fn takes_the_first_untrusted_hop_from_the_right() {
        // The client forged the first entry; our proxies appended the rest.
        let hops = ["6.6.6.6", "198.51.100.7", "10.0.0.2", "127.0.0.1"];
        assert_eq!(from_forwarded_for(&hops), Some(ip("198.51.100.7")));
    }

    #[test]
    fn falls_back_to_the_leftmost_hop_when_every_hop_is_internal() {
        assert_eq!(
            from_forwarded_for(&["10.1.2.3", "192.168.0.1"]),
            Some(ip("10.1.2.3"))
        );
    }

    #[test]
    fn ignores_garbage_and_reads_ports() {
        assert_eq!(
            from_forwarded_for(&["not an ip", " 198.51.100.8:1234 ", "unknown"]),
            Some(ip("198.51.100.8"))
        );
        assert_eq!(
            from_forwarded_for(&["[2001:db8::1]:80"]),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(from_forwarded_for(&["garbage"]), None);
    }

    #[test]
    fn a_missing_or_unusable_header_means_the_peer() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "nonsense"))
            .to_srv_request();
        assert_eq!(client_ip(&req, true), ip("203.0.113.9"));
    }
}
