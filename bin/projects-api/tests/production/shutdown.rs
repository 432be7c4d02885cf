//! SIGTERM under load: accepted requests finish, new connections are
//! refused, the process exits 0 within the grace period.

use std::time::Duration;

use projects_testkit::TestDb;

use super::database_failure::futures_join_all;
use super::server::Server;

const IN_FLIGHT: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_every_accepted_request_then_exits_0() {
    let db = TestDb::new().await;
    let mut server = Server::start(
        db.url(),
        &[
            ("DATABASE_TIMEOUT_MS", "20000"),
            ("DATABASE_POOL_SIZE", "8"),
            ("SHUTDOWN_GRACE_SECONDS", "20"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;

    // Hold a lock that /health/ready's query waits for: every request stays
    // in flight until we let go.
    let blocker = db.client().await;
    blocker
        .batch_execute("BEGIN; LOCK TABLE refinery_schema_history IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = server.url("/health/ready");
    let requests: Vec<_> = (0..IN_FLIGHT)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let response = client.get(url).send().await?;
                let status = response.status().as_u16();
                let body = response.text().await?;
                Ok::<_, reqwest::Error>((status, body))
            }
        })
        .collect();
    let in_flight = tokio::spawn(futures_join_all(requests));

    // Wait until requests wait on the lock, and give the rest time to be
    // accepted (they queue for a pooled connection).
    let mut waiting = 0;
    for _ in 0..200 {
        waiting = blocker
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("count")
            .get::<_, i64>(0);
        if waiting >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(waiting >= 1, "requests wait on the lock");
    tokio::time::sleep(Duration::from_millis(1000)).await;

    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused = tokio::net::TcpStream::connect(server.addr).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted after SIGTERM"
    );
    assert!(
        server.wait(Duration::from_millis(1)).await.is_none(),
        "exited with requests in flight"
    );

    blocker.batch_execute("COMMIT").await.expect("unlock");
    let outcomes = in_flight.await.expect("requests");
    let mut ok = 0;
    for outcome in &outcomes {
        match outcome {
            Ok((200, body)) if body == r#"{"status":"ok"}"# => ok += 1,
            // Never accepted (the machine was too slow to connect them all
            // before the signal): refused, which is allowed.
            Err(error) if error.is_connect() => {}
            other => panic!("an accepted request did not get its full response: {other:?}"),
        }
    }
    assert!(
        ok >= IN_FLIGHT / 2,
        "only {ok} of {IN_FLIGHT} requests were in flight"
    );

    let status = server
        .wait(Duration::from_secs(20))
        .await
        .expect("exits within the grace period");
    assert_eq!(status.code(), Some(0), "{:#?}", server.logs());
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains("SIGTERM")), "{logs:#?}");
    assert!(logs.iter().any(|l| l.contains("\"stopped\"")), "{logs:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_gracefully_too() {
    let db = TestDb::new().await;
    let mut server = Server::start(db.url(), &[("SHUTDOWN_GRACE_SECONDS", "5")]).await;
    let response = reqwest::get(server.url("/health/ready"))
        .await
        .expect("ready");
    assert_eq!(response.status(), 200);
    server.signal("INT");
    let status = server
        .wait(Duration::from_secs(10))
        .await
        .expect("exits within the grace period");
    assert_eq!(status.code(), Some(0), "{:#?}", server.logs());
    assert!(server.logs().iter().any(|l| l.contains("SIGINT")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_fails_readiness_at_once_while_still_serving() {
    let db = TestDb::new().await;
    let mut server = Server::start(
        db.url(),
        &[
            ("SHUTDOWN_DRAIN_SECONDS", "3"),
            ("SHUTDOWN_GRACE_SECONDS", "5"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    // A new connection for every request: the load balancer's checks and
    // requests arriving during the drain are new connections too.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let status = |path: &'static str| {
        let (client, url) = (client.clone(), server.url(path));
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    };
    assert_eq!(status("/health/ready").await.expect("ready"), 200);

    server.signal("TERM");
    let signalled = std::time::Instant::now();
    // Readiness fails at once (well within a load balancer's check interval).
    let mut ready = 200;
    while signalled.elapsed() < Duration::from_secs(2) {
        ready = status("/health/ready").await.expect("still accepting");
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(ready, 503, "readiness after SIGTERM");
    // …while new connections are accepted and served.
    let served_until = loop {
        match status("/health/live").await {
            Ok(200) => {}
            Ok(other) => panic!("a request during the drain got {other}"),
            // The end of serving: the listener is closed (connect refused),
            // or this connection reached the kernel's listen backlog in the
            // instant the listener closed and was reset unanswered (hyper's
            // IncompleteMessage). A failure before the drain's end still
            // fails the test: `served_until` below.
            Err(error) => {
                assert!(
                    error.is_connect() || format!("{error:?}").contains("IncompleteMessage"),
                    "{error:?}"
                );
                break signalled.elapsed();
            }
        }
        assert_eq!(status("/health/ready").await.ok(), Some(503));
        tokio::time::sleep(Duration::from_millis(50)).await;
        if signalled.elapsed() > Duration::from_secs(30) {
            panic!("still serving long after the drain");
        }
    };
    assert!(
        served_until >= Duration::from_millis(2500),
        "served only {served_until:?} of a 3 s drain"
    );
    let status = server
        .wait(Duration::from_secs(20))
        .await
        .expect("exits after the drain and the graceful stop");
    assert_eq!(status.code(), Some(0), "{:#?}", server.logs());
    let logs = server.logs();
    assert!(logs.iter().any(|l| l.contains("draining")), "{logs:#?}");
}

/// `projects-api healthcheck` (the container image's health check) against
/// the server on `BIND_ADDR`.
fn healthcheck(addr: std::net::SocketAddr) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_projects-api"))
        .arg("healthcheck")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("BIND_ADDR", addr.to_string())
        .output()
        .expect("run the healthcheck");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_healthcheck_command_follows_readiness() {
    let db = TestDb::new().await;
    let mut server = Server::start(
        db.url(),
        &[
            ("SHUTDOWN_DRAIN_SECONDS", "5"),
            ("SHUTDOWN_GRACE_SECONDS", "5"),
        ],
    )
    .await;
    let addr = server.addr;
    let (ok, stderr) = tokio::task::spawn_blocking(move || healthcheck(addr))
        .await
        .expect("healthcheck");
    assert!(ok, "healthy server: {stderr}");
    // Draining: not ready, so the health check fails.
    server.signal("TERM");
    let mut failed = String::new();
    for _ in 0..50 {
        let (ok, stderr) = tokio::task::spawn_blocking(move || healthcheck(addr))
            .await
            .expect("healthcheck");
        if !ok {
            failed = stderr;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(failed.contains("503"), "{failed:?}");
    server.signal("TERM");
    server.wait(Duration::from_secs(20)).await.expect("exits");
    // Nobody listening: fails too.
    let (ok, stderr) = tokio::task::spawn_blocking(move || healthcheck(addr))
        .await
        .expect("healthcheck");
    assert!(!ok, "{stderr}");
}
