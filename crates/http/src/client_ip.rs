//! Which address a request comes from: the one address that the logs (every
//! request's line, the authentication audit line) and the rate limits use.
//!
//! By default that is the TCP peer. Behind reverse proxies every request
//! comes from a proxy, so the proxies are named in `TRUSTED_PROXIES` (CIDRs):
//! when, and only when, the peer is one of them, `X-Forwarded-For` is read
//! from the right (the hop our proxy appended) past the trusted proxies, and
//! the first address that is not one of them is the client. Hops further
//! left were written by whoever we do not trust and are never believed. The
//! `Forwarded` header (RFC 7239) is never read.
//!
//! It is computed once per request, by the outer layer (`middleware::outer`), and kept
//! in the request's extensions as [`ClientIp`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use actix_web::dev::ServiceRequest;
use actix_web::{HttpMessage as _, HttpRequest};

/// The key for requests whose peer is unknown (only in-process tests).
const UNKNOWN: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The client's address, as decided once per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The decision kept in the request's extensions, or made now.
    pub(crate) fn of(req: &ServiceRequest, proxies: &TrustedProxies) -> Self {
        if let Some(known) = req.extensions().get::<Self>() {
            return *known;
        }
        let ip = client_ip(req, proxies);
        req.extensions_mut().insert(Self(ip));
        Self(ip)
    }

    /// The decision made for this request by the middleware (the peer when
    /// the request did not go through it, as in a bare test service).
    pub(crate) fn of_handled(req: &HttpRequest) -> Option<IpAddr> {
        req.extensions()
            .get::<Self>()
            .map(|client| client.0)
            .or_else(|| req.peer_addr().map(|peer| canonical(peer.ip())))
    }
}

impl fmt::Display for ClientIp {
    /// As `IpAddr` writes it; an IPv4 address (nearly every client) in one
    /// piece, where `IpAddr` makes a formatting call per octet (this is the
    /// `client.ip` of every request's log line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let IpAddr::V4(v4) = self.0 else {
            return fmt::Display::fmt(&self.0, f);
        };
        let mut text = [0; 15];
        let mut len = 0;
        for (i, octet) in v4.octets().into_iter().enumerate() {
            if i > 0 {
                text[len] = b'.';
                len += 1;
            }
            if octet >= 100 {
                text[len] = b'0' + octet / 100;
                len += 1;
            }
            if octet >= 10 {
                text[len] = b'0' + octet / 10 % 10;
                len += 1;
            }
            text[len] = b'0' + octet % 10;
            len += 1;
        }
        f.write_str(std::str::from_utf8(&text[..len]).unwrap_or_default())
    }
}

/// One block of addresses (`10.0.0.0/8`, `2001:db8::/32`, or one address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an address or a CIDR block"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= max)
                .ok_or_else(|| format!("{text:?} has a prefix length that is not 0 to {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The proxies whose `X-Forwarded-For` hops are believed. Empty by default:
/// the TCP peer is the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    /// What `TRUST_FORWARDED_FOR=true` stands for: the loopback and private
    /// ranges, where a deployment's own proxies live.
    pub fn loopback_and_private() -> Vec<Cidr> {
        [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "::1/128",
            "fc00::/7",
        ]
        .iter()
        .filter_map(|block| block.parse().ok())
        .collect()
    }

    /// Parses a comma-separated list of CIDRs; the error names the bad one.
    pub fn parse_list(text: &str) -> Result<Vec<Cidr>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|block| !block.is_empty())
            .map(str::parse)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The blocks believed, in the order given.
    pub fn blocks(&self) -> &[Cidr] {
        &self.0
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|block| block.contains(ip))
    }
}

/// The client's address (see the module's documentation).
pub fn client_ip(req: &ServiceRequest, proxies: &TrustedProxies) -> IpAddr {
    let peer = req.peer_addr().map_or(UNKNOWN, |addr| canonical(addr.ip()));
    if proxies.is_empty() || !proxies.trusts(peer) {
        return peer;
    }
    let hops = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|value| value.to_str().unwrap_or("\u{fffd}"))
        .flat_map(|value| value.split(','));
    from_forwarded_for(peer, hops, proxies)
}

/// Walks `X-Forwarded-For` from the right, starting at the trusted `peer`:
/// each trusted hop hands over to the hop left of it; the first untrusted
/// one is the client. A hop that is not an address ends the walk at the
/// last trusted one (whatever is left of garbage cannot be believed), and
/// so does the end of the list (the request came from inside).
fn from_forwarded_for<'a>(
    peer: IpAddr,
    hops: impl DoubleEndedIterator<Item = &'a str>,
    proxies: &TrustedProxies,
) -> IpAddr {
    let mut client = peer;
    for hop in hops.rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !proxies.trusts(ip) {
            return client;
        }
    }
    client
}

/// One hop: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = if let Ok(ip) = hop.parse::<IpAddr>() {
        ip
    } else if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        socket.ip()
    } else {
        return None;
    };
    Some(canonical(ip))
}

/// IPv4 clients reached over an IPv6 socket (`::ffff:1.2.3.4`) are IPv4
/// clients.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The rate-limit key of a client: its IPv4 address, or the /64 of its IPv6
/// address (one subscriber's network, which hands out addresses freely).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        )),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    fn proxies(list: &str) -> TrustedProxies {
        TrustedProxies::new(TrustedProxies::parse_list(list).expect("valid"))
    }

    fn walk(peer: &str, header: &str, trusted: &str) -> IpAddr {
        from_forwarded_for(ip(peer), header.split(','), &proxies(trusted))
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.9:4000".parse().expect("addr"))
            .insert_header(("x-forwarded-for", "198.51.100.1"))
            .to_srv_request();
        assert_eq!(
            client_ip(&req, &TrustedProxies::default()),
            ip("203.0.113.9")
        );
        assert_eq!(client_ip(&req, &proxies("10.0.0.0/8")), ip("203.0.113.9"));
        assert_eq!(
            client_ip(&req, &proxies("203.0.113.0/24")),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn walks_from_the_right_past_trusted_hops_and_stops_at_garbage() {
        for (header, client) in [
            // The client forged the first entry; our proxies appended the rest.
            ("6.6.6.6, 198.51.100.7, 10.0.0.2", "198.51.100.7"),
            // A private address is only a proxy when it is named.
            ("6.6.6.6, 192.168.1.5, 10.0.0.2", "192.168.1.5"),
            // Garbage ends the walk at the last trusted hop.
            ("198.51.100.8, not an ip, 10.0.0.2", "10.0.0.2"),
            ("unknown", "10.0.0.3"),
            ("", "10.0.0.3"),
            // Ports are read past.
            (" 198.51.100.8:1234 ", "198.51.100.8"),
            ("[2001:db8::1]:80", "2001:db8::1"),
        ] {
            assert_eq!(
                walk("10.0.0.3", header, "10.0.0.0/8"),
                ip(client),
                "{header}"
            );
        }
    }

    #[test]
    fn every_hop_trusted_means_the_leftmost() {
        assert_eq!(
            walk("10.0.0.3", "10.1.2.3, 10.0.0.1", "10.0.0.0/8"),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn cidrs_parse_and_match() {
        let list = proxies("10.0.0.0/8, 2001:db8::/32, 192.0.2.7");
        assert!(list.trusts(ip("10.255.0.1")));
        assert!(!list.trusts(ip("11.0.0.1")));
        assert!(list.trusts(ip("2001:db8:ffff::1")));
        assert!(!list.trusts(ip("2001:db9::1")));
        assert!(list.trusts(ip("192.0.2.7")));
        assert!(!list.trusts(ip("192.0.2.8")));
        assert!(proxies("0.0.0.0/0").trusts(ip("1.2.3.4")));
        for bad in ["10.0.0.0/33", "nope", "::/129", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:198.51.100.1")), ip("198.51.100.1"));
        assert_eq!(limit_key(ip("198.51.100.1")), ip("198.51.100.1"));
    }

    proptest::proptest! {
        /// Any address is written as `IpAddr` writes it.
        #[test]
        fn fuzz_client_ips_display_as_ip_addrs(v4 in proptest::num::u32::ANY, v6 in proptest::num::u128::ANY) {
            for ip in [IpAddr::from(Ipv4Addr::from(v4)), IpAddr::from(Ipv6Addr::from(v6))] {
                proptest::prop_assert_eq!(ClientIp(ip).to_string(), ip.to_string());
            }
        }

        /// Whatever a client writes left of the hop our proxies appended,
        /// the client is that hop: addresses, garbage, ports, IPv6.
        #[test]
        fn fuzz_hops_a_client_prepends_never_choose_the_address(
            prepended in proptest::collection::vec("\\PC{0,30}|[0-9a-f.:\\[\\]]{1,40}|10\\.0\\.[0-9]{1,3}\\.[0-9]{1,3}", 0..6),
            client in proptest::num::u8::ANY,
            trusted_hops in proptest::collection::vec(proptest::num::u16::ANY, 0..3),
        ) {
            let proxies = proxies("10.0.0.0/8");
            let client = format!("203.0.113.{client}");
            let mut hops: Vec<String> = prepended;
            hops.push(client.clone());
            hops.extend(trusted_hops.iter().map(|n| format!("10.1.{}.{}:{}", n >> 8, n & 0xff, n)));
            let chosen = from_forwarded_for(ip("10.0.0.1"), hops.iter().map(String::as_str), &proxies);
            proptest::prop_assert_eq!(chosen, ip(&client));
        }

        /// Any header text: never a panic, and the address is the peer or
        /// one of the hops the header named.
        #[test]
        fn fuzz_forwarded_for_picks_the_peer_or_a_named_hop(raw in "[0-9a-fA-F.:\\[\\], ]{0,120}|\\PC{0,120}") {
            let peer = ip("10.0.0.1");
            let chosen = from_forwarded_for(peer, raw.split(','), &proxies("10.0.0.0/8, fc00::/7"));
            proptest::prop_assert!(chosen == peer || raw.split(',').any(|hop| parse_hop(hop) == Some(chosen)));
        }

        /// Any `TRUSTED_PROXIES` entry: refused, or a block that prints
        /// back as itself and contains its own network.
        #[test]
        fn fuzz_cidrs_parse_or_refuse(text in "[0-9a-fA-F.:/ ]{0,50}|\\PC{0,50}") {
            if let Ok(cidr) = text.parse::<Cidr>() {
                let again: Cidr = cidr.to_string().parse().expect("its own form parses");
                proptest::prop_assert_eq!(again, cidr);
                proptest::prop_assert!(cidr.contains(cidr.network));
            }
        }
    }
}
