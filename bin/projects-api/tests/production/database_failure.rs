//! PostgreSQL stops and starts under a running server.

use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::server::Server;

const TIMEOUT_MS: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_is_503_fast_and_the_server_recovers_without_a_restart() {
    let cluster = Cluster::start();
    let server = Server::start(
        &cluster.url(),
        &[
            ("DATABASE_TIMEOUT_MS", "1000"),
            ("DATABASE_POOL_SIZE", "4"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let ready = || client.get(server.url("/health/ready")).send();

    // Fill the pool with connections that the restart will kill.
    let warm = futures_join_all((0..16).map(|_| ready())).await;
    assert!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
    );

    cluster.stop();
    for attempt in 0..5 {
        let started = Instant::now();
        let response = client
            .get(server.url("/health/ready"))
            .header("x-request-id", format!("db-down-{attempt}"))
            .send()
            .await
            .expect("an answer, not a hang");
        let elapsed = started.elapsed();
        assert_eq!(response.status(), 503);
        assert!(
            elapsed < Duration::from_millis(TIMEOUT_MS + 1500),
            "took {elapsed:?}"
        );
        assert!(response.headers().contains_key("retry-after"));
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = response.text().await.expect("body");
        for leak in ["postgres", "connection refused", "Error", "::"] {
            assert!(!body.contains(leak), "{leak} leaked: {body}");
        }
    }

    cluster.resume();
    // No restart of the server: it reconnects by itself, and no request
    // fails on a connection left over from before.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(ready().await.expect("an answer").status().as_u16());
    }
    let burst = futures_join_all((0..20).map(|_| ready())).await;
    statuses.extend(
        burst
            .into_iter()
            .map(|r| r.expect("an answer").status().as_u16()),
    );
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // The same again with no request while the database is down, so the
    // pool still holds connections from before the restart.
    cluster.stop();
    cluster.resume();
    let burst = futures_join_all((0..20).map(|_| ready())).await;
    let statuses: Vec<u16> = burst
        .into_iter()
        .map(|r| r.expect("an answer").status().as_u16())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // Every log line of a request carries its id.
    let logs = server.logs();
    let lines: Vec<&String> = logs.iter().filter(|l| l.contains("db-down-0")).collect();
    assert!(lines.len() >= 2, "{logs:#?}");
    assert!(
        lines.iter().any(|l| l.contains("readiness check failed")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("request finished")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_database_is_503_within_the_timeout_never_a_hang() {
    let cluster = Cluster::start();
    let server = Server::start(
        &cluster.url(),
        &[
            ("DATABASE_TIMEOUT_MS", "1000"),
            ("DATABASE_POOL_SIZE", "2"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("client");
    let ready = || client.get(server.url("/health/ready")).send();
    let warm = futures_join_all((0..4).map(|_| ready())).await;
    assert!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
    );

    // The pooled connections stay open and look healthy, but nothing
    // answers on them, and new connections are not served either.
    cluster.freeze();
    let answers = futures_join_all((0..4).map(|_| {
        let request = ready();
        async move {
            let started = Instant::now();
            let status = request.await.map(|r| r.status().as_u16());
            (status, started.elapsed())
        }
    }))
    .await;
    cluster.thaw();
    for (status, elapsed) in answers {
        let status = status.expect("an answer, not a hang");
        assert_eq!(status, 503);
        // The statement's timeout plus the store's margin plus slack for a
        // busy machine.
        assert!(
            elapsed < Duration::from_millis(TIMEOUT_MS + 2500),
            "took {elapsed:?}"
        );
    }

    // Thawed: answers again, with no restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 0;
    while Instant::now() < deadline {
        status = ready().await.expect("an answer").status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

/// Runs the futures concurrently (reqwest futures are `Send`).
pub async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task"));
    }
    outputs
}
