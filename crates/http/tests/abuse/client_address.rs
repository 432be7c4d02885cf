//! Which address a client is counted as: trusted proxies only, IPv6 per /64.

use std::net::IpAddr;

use actix_web::http::Method;

use super::support::{app_with, limits, send};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

async fn statuses(
    app: &projects_testkit::TestApp,
    requests: &[(&str, &[(&str, &str)])],
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for (peer, headers) in requests {
        let response = send(app, Method::GET, "/health/live", ip(peer), headers, None).await;
        statuses.push(response.status.as_u16());
    }
    statuses
}

#[actix_web::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    // 10.0.0.0/8 are our proxies; the peer is not one of them.
    let app = app_with(limits(1, 0, "10.0.0.0/8", None)).await;
    let got = statuses(
        &app,
        &[
            ("203.0.113.10", &[("x-forwarded-for", "198.51.100.1")]),
            ("203.0.113.10", &[("x-forwarded-for", "198.51.100.2")]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429]);
}

#[actix_web::test]
async fn a_private_client_cannot_pick_its_key_unless_its_address_is_a_proxy() {
    // A client inside a private range that is not a named proxy.
    let app = app_with(limits(1, 0, "10.0.0.0/8", None)).await;
    let got = statuses(
        &app,
        &[
            ("192.168.1.20", &[("x-forwarded-for", "198.51.100.1")]),
            ("192.168.1.20", &[("x-forwarded-for", "198.51.100.2")]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429]);
}

#[actix_web::test]
async fn a_trusted_proxy_names_the_client_from_the_right() {
    let app = app_with(limits(1, 0, "10.0.0.0/8", None)).await;
    let got = statuses(
        &app,
        &[
            // Forged left-most entries change nothing: the client is the
            // first untrusted hop from the right.
            (
                "10.0.0.1",
                &[("x-forwarded-for", "1.1.1.1, 198.51.100.3, 10.0.0.2")],
            ),
            (
                "10.0.0.1",
                &[("x-forwarded-for", "2.2.2.2, 198.51.100.3, 10.0.0.2")],
            ),
            ("10.0.0.1", &[("x-forwarded-for", "198.51.100.4")]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429, 200]);
}

#[actix_web::test]
async fn the_forwarded_header_is_never_believed() {
    let app = app_with(limits(1, 0, "10.0.0.0/8", None)).await;
    let got = statuses(
        &app,
        &[
            ("10.0.0.1", &[("forwarded", "for=198.51.100.5")]),
            ("10.0.0.1", &[("forwarded", "for=198.51.100.6")]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429]);
}

#[actix_web::test]
async fn malformed_forwarded_for_falls_back_to_the_last_trusted_hop() {
    let app = app_with(limits(1, 0, "10.0.0.0/8", None)).await;
    let got = statuses(
        &app,
        &[
            // Garbage left of our proxy: counted as that proxy (10.0.0.9).
            (
                "10.0.0.1",
                &[("x-forwarded-for", "198.51.100.7, not-an-ip, 10.0.0.9")],
            ),
            (
                "10.0.0.1",
                &[("x-forwarded-for", "198.51.100.8, ::zz, 10.0.0.9")],
            ),
            // Nothing usable at all: the peer.
            ("10.0.0.1", &[("x-forwarded-for", "")]),
            ("10.0.0.1", &[("x-forwarded-for", "unknown")]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429, 200, 429]);
}

#[actix_web::test]
async fn ipv6_clients_are_counted_per_64() {
    let app = app_with(limits(1, 0, "", None)).await;
    let got = statuses(
        &app,
        &[
            ("2001:db8:1:2::1", &[]),
            ("2001:db8:1:2:ffff:ffff:ffff:fffe", &[]),
            ("2001:db8:1:3::1", &[]),
            // An IPv4 client over an IPv6 socket is that IPv4 client.
            ("198.51.100.9", &[]),
            ("::ffff:198.51.100.9", &[]),
        ],
    )
    .await;
    assert_eq!(got, [200, 429, 200, 200, 429]);
}
