//! A Redis that accepts connections and never answers, met by many
//! requests at once while the breaker is still closed.

use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};

use super::support::{app_with, limits, random_ip, send};

#[actix_web::test]
async fn thirty_requests_at_once_into_a_silent_redis_each_wait_at_most_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts, holds every connection open, never sends a byte.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut config = limits(1000, 1000, "", Some(&format!("redis://{addr}")));
    config.rate_limits.redis_timeout = Duration::from_millis(50);
    let app = app_with(config).await;
    let requests = (0..30).map(|_| {
        let app = &app;
        async move {
            let started = Instant::now();
            let response = send(app, Method::GET, "/health/live", random_ip(), &[], None).await;
            (response.status, started.elapsed())
        }
    });
    let results = futures_util::future::join_all(requests).await;
    for (status, time) in &results {
        assert_eq!(*status, StatusCode::OK);
        // 50 ms plus a loaded machine's scheduling.
        assert!(*time < Duration::from_secs(1), "{time:?}");
    }
    // The breaker is open now: the next requests do not try Redis at all.
    let started = Instant::now();
    for _ in 0..10 {
        let response = send(&app, Method::GET, "/health/live", random_ip(), &[], None).await;
        assert_eq!(response.status, StatusCode::OK);
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}
