//! Per-client rate limits, in memory and shared through Redis.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::test;
use projects_http::HttpConfig;
use projects_http::client_ip::TrustedProxies;
use projects_http::rate_limit::RateLimitConfig;

use super::support::{app, header};

/// A client address of its own for each test, so that tests sharing a
/// Redis do not share an allowance.
fn random_client() -> SocketAddr {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    // 100.64.0.0/10 (shared address space), which the trusted-proxy test names.
    SocketAddr::from(([100, (bytes[0] & 0x3f) | 64, bytes[1], bytes[2]], 4000))
}

fn limits(per_second: u32, burst: u32, auth_per_minute: u32) -> HttpConfig {
    HttpConfig {
        rate_limits: RateLimitConfig {
            per_second,
            burst,
            auth_per_minute,
            ..RateLimitConfig::default()
        },
        ..HttpConfig::default()
    }
}

fn get(uri: &str, client: SocketAddr) -> actix_http::Request {
    test::TestRequest::get()
        .uri(uri)
        .peer_addr(client)
        .to_request()
}

#[actix_web::test]
async fn the_general_limit_refuses_the_request_past_the_burst() {
    let app = app(limits(1, 3, 0)).await;
    let client = random_client();
    for remaining in (0..3).rev() {
        let response = test::call_service(&app, get("/health/live", client)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("3"));
        assert_eq!(
            header(&response, "ratelimit-remaining"),
            Some(remaining.to_string())
        );
    }
    let response = test::call_service(&app, get("/health/live", client)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&response, "retry-after").as_deref(), Some("1"));
    assert_eq!(
        header(&response, "ratelimit-remaining").as_deref(),
        Some("0")
    );
    assert!(header(&response, "ratelimit-reset").is_some());
    assert!(header(&response, "x-request-id").is_some());
    assert_eq!(
        header(&response, "content-type").as_deref(),
        Some("application/problem+json")
    );
    let body: serde_json::Value = test::read_body_json(response).await;
    assert_eq!(body["status"], 429);

    // Another client has its own allowance.
    let response = test::call_service(&app, get("/health/live", random_client())).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn auth_routes_have_the_stricter_limit() {
    let app = app(limits(100, 100, 2)).await;
    let client = random_client();
    for _ in 0..2 {
        let response = test::call_service(&app, get("/api/v1/auth/login", client)).await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&response, "ratelimit-limit").as_deref(), Some("2"));
    }
    let response = test::call_service(&app, get("/api/v1/auth/login", client)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = header(&response, "retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // The general limit still lets the same client elsewhere.
    let response = test::call_service(&app, get("/health/live", client)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[actix_web::test]
async fn zero_turns_a_limit_off() {
    let app = app(limits(0, 0, 0)).await;
    let client = random_client();
    for _ in 0..50 {
        let response = test::call_service(&app, get("/api/v1/auth/login", client)).await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(header(&response, "ratelimit-limit").is_none());
    }
}

#[actix_web::test]
async fn forwarded_for_names_the_client_only_when_trusted() {
    for trusted in [false, true] {
        let mut config = limits(1, 1, 0);
        if trusted {
            config.rate_limits.trusted_proxies = TrustedProxies::new(
                TrustedProxies::parse_list("100.0.0.0/8, 10.0.0.0/8").expect("valid"),
            );
        }
        let app = app(config).await;
        let proxy = random_client();
        let mut statuses = Vec::new();
        for client in ["198.51.100.1", "198.51.100.2"] {
            let request = test::TestRequest::get()
                .uri("/health/live")
                .peer_addr(proxy)
                .insert_header(("x-forwarded-for", format!("{client}, 10.0.0.1")))
                .to_request();
            statuses.push(test::call_service(&app, request).await.status());
        }
        // Trusted: two clients, one request each. Untrusted: both are the
        // proxy, and the second is over its limit.
        let second = if trusted {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(statuses, [StatusCode::OK, second], "trusted={trusted}");
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .unwrap_or_else(|_| panic!("REDIS_URL is not set: run with a Redis (just test starts one)"))
}

fn shared(per_second: u32, burst: u32, url: &str) -> HttpConfig {
    let mut config = limits(per_second, burst, 0);
    config.rate_limits.redis_url = Some(url.to_owned().into());
    // Generous: these tests are about sharing, not about a slow Redis (a
    // loaded test machine may take longer than the default to connect).
    config.rate_limits.redis_timeout = Duration::from_secs(1);
    config
}

#[actix_web::test]
#[ignore = "needs Redis: REDIS_URL=redis://127.0.0.1:6379 cargo test -- --include-ignored"]
async fn two_instances_sharing_redis_allow_the_limit_once() {
    let url = redis_url();
    let first = app(shared(1, 5, &url)).await;
    let second = app(shared(1, 5, &url)).await;
    let client = random_client();
    let mut allowed = 0;
    for round in 0..10 {
        let instance = if round % 2 == 0 { &first } else { &second };
        let response = test::call_service(instance, get("/health/live", client)).await;
        if response.status() == StatusCode::OK {
            allowed += 1;
        } else {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert!(header(&response, "retry-after").is_some());
        }
    }
    assert_eq!(
        allowed, 5,
        "the two instances together allow the burst once"
    );
}

#[actix_web::test]
#[ignore = "needs Redis: REDIS_URL=redis://127.0.0.1:6379 cargo test -- --include-ignored"]
async fn shared_limits_replenish_at_the_configured_rate() {
    let url = redis_url();
    let app = app(shared(20, 1, &url)).await;
    let client = random_client();
    assert_eq!(
        test::call_service(&app, get("/health/live", client))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        test::call_service(&app, get("/health/live", client))
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // One request per 50 ms comes back.
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    assert_eq!(
        test::call_service(&app, get("/health/live", client))
            .await
            .status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn without_redis_requests_are_served_and_limited_in_memory() {
    // Nothing listens on port 1: every Redis call fails at once.
    let app = app(shared(1, 2, "redis://127.0.0.1:1")).await;
    let client = random_client();
    let started = std::time::Instant::now();
    let statuses: Vec<_> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(
                test::call_service(&app, get("/health/live", client))
                    .await
                    .status(),
            );
        }
        statuses
    };
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}

/// The `rate_limited_requests_total` counter of this test process.
fn rate_limited_total() -> &'static Arc<AtomicU64> {
    struct Recorder(Arc<AtomicU64>);
    impl metrics::Recorder for Recorder {
        fn describe_counter(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_gauge(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn describe_histogram(
            &self,
            _: metrics::KeyName,
            _: Option<metrics::Unit>,
            _: metrics::SharedString,
        ) {
        }
        fn register_counter(
            &self,
            key: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Counter {
            if key.name() == "rate_limited_requests_total" {
                metrics::Counter::from_arc(self.0.clone())
            } else {
                metrics::Counter::noop()
            }
        }
        fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
            metrics::Gauge::noop()
        }
        fn register_histogram(
            &self,
            _: &metrics::Key,
            _: &metrics::Metadata<'_>,
        ) -> metrics::Histogram {
            metrics::Histogram::noop()
        }
    }
    static TOTAL: OnceLock<Arc<AtomicU64>> = OnceLock::new();
    TOTAL.get_or_init(|| {
        let total = Arc::new(AtomicU64::new(0));
        metrics::set_global_recorder(Recorder(total.clone())).expect("the only recorder");
        total
    })
}

#[actix_web::test]
async fn limited_requests_are_counted() {
    let total = rate_limited_total();
    let app = app(limits(1, 1, 0)).await;
    let client = random_client();
    let before = total.load(Ordering::SeqCst);
    test::call_service(&app, get("/health/live", client)).await;
    let response = test::call_service(&app, get("/health/live", client)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other tests of this process may count too: at least ours.
    assert!(total.load(Ordering::SeqCst) > before);
}

/// A TCP proxy to Redis that can be cut (every connection closed, nothing
/// listening) and restored on the same port: Redis going away and coming
/// back, without touching the shared Redis.
struct Cuttable {
    addr: SocketAddr,
    target: String,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Cuttable {
    async fn start(target: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let proxy = Self {
            addr,
            target,
            tasks: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().expect("tasks").push(pipe);
            }
        });
        self.tasks.lock().expect("tasks").push(accept);
    }

    fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr)
            .await
            .expect("rebind");
        self.serve(listener);
    }
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("logs")).into_owned()
    }
}

#[actix_web::test]
#[ignore = "needs Redis: REDIS_URL=redis://127.0.0.1:6379 cargo test -- --include-ignored"]
async fn when_redis_goes_away_requests_are_served_and_limited_in_memory() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let url = redis_url();
    let target = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .and_then(|authority| authority.rsplit('@').next())
        .expect("host:port")
        .to_owned();
    let proxy = Cuttable::start(target).await;
    let app = app(shared(1, 3, &format!("redis://{}", proxy.addr))).await;
    let client = random_client();
    for _ in 0..2 {
        let response = test::call_service(&app, get("/health/live", client)).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert!(!logs.text().contains("unreachable"));

    proxy.cut();
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            test::call_service(&app, get("/health/live", client))
                .await
                .status(),
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // This instance's memory counted the two requests Redis counted: the
    // allowance goes on where it was (one left), it does not start full.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let text = logs.text();
    assert_eq!(text.matches("Redis is unreachable").count(), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");

    proxy.restore().await;
    // After the pause, Redis is tried again and answers.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !logs.text().contains("Redis answers again") && std::time::Instant::now() < deadline {
        test::call_service(&app, get("/health/live", random_client())).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        logs.text().contains("Redis answers again"),
        "{}",
        logs.text()
    );
}
