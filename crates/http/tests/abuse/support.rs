//! An app with limits over a fresh database, and requests from a chosen
//! client address.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::Method;
use actix_web::test;
use projects_http::client_ip::TrustedProxies;
use projects_http::rate_limit::RateLimitConfig;
use projects_http::{AppState, HttpConfig};
use projects_testkit::ForTests as _;
use projects_testkit::{TestApp, TestDb, TestResponse};
use serde_json::Value;

/// The limits of a test: general per second (burst the same), auth per
/// minute, the proxies trusted, and a Redis to share them through.
pub fn limits(
    per_second: u32,
    auth_per_minute: u32,
    trusted: &str,
    redis_url: Option<&str>,
) -> HttpConfig {
    HttpConfig {
        rate_limits: RateLimitConfig {
            per_second,
            burst: per_second,
            auth_per_minute,
            redis_url: redis_url.map(|url| url.to_owned().into()),
            trusted_proxies: TrustedProxies::new(
                TrustedProxies::parse_list(trusted).expect("valid CIDRs"),
            ),
            // Generous: these tests are about sharing, not about a slow
            // Redis (a loaded machine may take longer to connect).
            redis_timeout: std::time::Duration::from_secs(1),
        },
        ..HttpConfig::default()
    }
}

pub async fn app_with(config: HttpConfig) -> TestApp {
    let db = TestDb::new().await;
    let state = AppState::for_tests_with(db.store().clone(), config);
    TestApp::with_state(db, state).await
}

/// A client address of its own for each call, so that tests sharing a
/// Redis do not share an allowance.
pub fn random_ip() -> IpAddr {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    IpAddr::from([100, bytes[0] | 64, bytes[1], bytes[2]])
}

/// A request from `peer` with `headers`, and a JSON body if any.
pub async fn send(
    app: &TestApp,
    method: Method,
    uri: &str,
    peer: IpAddr,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> TestResponse {
    let mut request = test::TestRequest::default()
        .method(method)
        .uri(uri)
        .peer_addr(SocketAddr::new(peer, 4000));
    for header in headers {
        request = request.insert_header(*header);
    }
    if let Some(body) = body {
        request = request
            .insert_header(("content-type", "application/json"))
            .set_payload(body.to_string());
    }
    app.send(request.to_request()).await
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .unwrap_or_else(|_| panic!("REDIS_URL is not set: run with a Redis (just test starts one)"))
}
