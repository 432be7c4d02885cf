//! Abuse resistance through the real binary: a Redis that never answers
//! costs each request at most `REDIS_TIMEOUT_MS`, and the one client
//! address (trusted proxies only) is what the logs and the limits use.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use projects_testkit::TestDb;
use serde_json::{Value, json};

use super::cluster::free_port;
use super::database_failure::futures_join_all;
use super::server::Server;

/// A "Redis" that accepts connections and never answers a byte.
fn black_hole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

fn client() -> reqwest::Client {
    // A connection per request, like many clients.
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Sends `count` requests to `/health/live` at once; each one's status and
/// time.
async fn wave(server: &Server, count: usize) -> Vec<(u16, Duration)> {
    let client = client();
    let url = server.url("/health/live");
    futures_join_all((0..count).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let status = client.get(url).send().await.expect("an answer").status();
            (status.as_u16(), started.elapsed())
        }
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_never_answers_costs_a_request_at_most_the_timeout() {
    let db = TestDb::new().await;
    let redis = format!("redis://127.0.0.1:{}", black_hole());
    let metrics = format!("127.0.0.1:{}", free_port());
    let server = Server::start(
        db.url(),
        &[
            ("REDIS_URL", &redis),
            ("REDIS_TIMEOUT_MS", "50"),
            ("RATE_LIMIT_PER_SECOND", "1000"),
            ("RATE_LIMIT_BURST", "1000"),
            ("METRICS_ADDR", &metrics),
        ],
    )
    .await;
    // Starting the server (its liveness polls) already found Redis silent
    // and opened the breaker. Past its pause, the first wave meets it half
    // open: one request probes Redis for 50 ms, the others do not wait; the
    // second wave finds it open again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for round in ["first", "second"] {
        let results = wave(&server, 30).await;
        let mut times: Vec<Duration> = results.iter().map(|(_, time)| *time).collect();
        times.sort();
        println!(
            "{round} wave: median {:?}, slowest {:?}",
            times[15], times[29]
        );
        for (status, time) in &results {
            assert_eq!(*status, 200);
            // 50 ms plus a loaded machine's scheduling; the defect took
            // seconds (8 s median).
            assert!(*time < Duration::from_secs(1), "{round} wave: {time:?}");
        }
    }
    // Logins check the per-account throttle through the same Redis.
    let started = Instant::now();
    let login = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "nobody@example.com", "password": "wrong password" }))
        .send()
        .await
        .expect("an answer");
    assert_eq!(login.status().as_u16(), 401);
    assert!(started.elapsed() < Duration::from_secs(5));

    let scrape = client()
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let fallbacks: f64 = scrape
        .lines()
        .find_map(|line| line.strip_prefix("rate_limit_redis_fallbacks_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no fallback counter in {scrape}"));
    assert!(fallbacks >= 60.0, "{fallbacks} fallbacks counted");
    let warnings = server
        .logs()
        .iter()
        .filter(|line| line.contains("Redis is unreachable"))
        .count();
    assert!(warnings >= 1, "{:#?}", server.logs());
}

/// The JSON log lines that `wanted` picks, once there are at least `count`
/// (the log is read from the process's stderr, a moment behind).
async fn lines_where(server: &Server, count: usize, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = server
            .logs()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| wanted(line))
            .collect();
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_audit(line: &Value) -> bool {
    line["message"] == "authentication attempt"
}

/// `client.ip` of the request span of a log line.
fn span_client(line: &Value) -> Option<&str> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|span| span["name"] == "request")?["client.ip"]
        .as_str()
}

async fn login(server: &Server, headers: &[(&str, &str)]) -> u16 {
    let mut request = client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({
            "email": format!("{}@example.com", uuid::Uuid::new_v4().simple()),
            "password": "wrong password",
        }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("an answer").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_chosen_address_reaches_neither_the_logs_nor_the_limits() {
    let db = TestDb::new().await;
    // The peer (127.0.0.1) is not one of the proxies.
    let server = Server::start(
        db.url(),
        &[
            ("TRUSTED_PROXIES", "10.0.0.0/8"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "2"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for n in 1..=3 {
        let forged = format!("198.51.100.{n}");
        let forwarded = format!("for={forged}");
        statuses.push(
            login(
                &server,
                &[
                    ("x-forwarded-for", forged.as_str()),
                    ("forwarded", forwarded.as_str()),
                ],
            )
            .await,
        );
    }
    assert_eq!(statuses, [401, 401, 429]);
    let audits = lines_where(&server, 2, is_audit).await;
    assert_eq!(audits.len(), 2, "{:#?}", server.logs());
    for line in &audits {
        assert_eq!(line["client.ip"], "127.0.0.1", "{line}");
    }
    let logins = lines_where(&server, 3, |line| {
        line["message"] == "request finished"
            && line["spans"][0]["http.route"] == "/api/v1/auth/login"
    })
    .await;
    assert_eq!(logins.len(), 3, "{:#?}", server.logs());
    let finished = lines_where(&server, 4, |line| line["message"] == "request finished").await;
    for line in &finished {
        assert_eq!(span_client(line), Some("127.0.0.1"), "{line}");
    }
    assert!(
        !server.logs().iter().any(|line| line.contains("198.51.100")),
        "a forged address was logged: {:#?}",
        server.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_logged_and_limited() {
    let db = TestDb::new().await;
    // Shorthand for the loopback and private ranges: the peer is trusted.
    let server = Server::start(
        db.url(),
        &[
            ("TRUST_FORWARDED_FOR", "true"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "1"),
        ],
    )
    .await;
    let chain = [("x-forwarded-for", "6.6.6.6, 198.51.100.7")];
    assert_eq!(login(&server, &chain).await, 401);
    // Another forged left-most entry: still the same client.
    let chain2 = [("x-forwarded-for", "7.7.7.7, 198.51.100.7")];
    assert_eq!(login(&server, &chain2).await, 429);
    // Another client behind the same proxy has its own allowance.
    assert_eq!(
        login(&server, &[("x-forwarded-for", "198.51.100.8")]).await,
        401
    );
    // A malformed header: the proxy itself, served normally.
    assert_eq!(
        login(&server, &[("x-forwarded-for", "[garbage")]).await,
        401
    );
    let audits = lines_where(&server, 3, is_audit).await;
    let clients: Vec<&str> = audits
        .iter()
        .filter_map(|line| line["client.ip"].as_str())
        .collect();
    assert_eq!(clients, ["198.51.100.7", "198.51.100.8", "127.0.0.1"]);
    for line in &audits {
        assert_eq!(span_client(line), line["client.ip"].as_str(), "{line}");
    }
}
