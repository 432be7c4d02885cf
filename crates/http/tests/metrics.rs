//! `/metrics`: requests are counted by route pattern, the pool and the
//! other services' series are there, all in Prometheus' text format.

use actix_web::http::StatusCode;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, test, web};
use projects_http::AppState;
use projects_http::metrics::{install_recorder, metrics_app};
use projects_http::middleware::outer::outer;
use projects_testkit::ForTests as _;
use projects_testkit::TestDb;

async fn scrape(db: &TestDb) -> String {
    let scraper = test::init_service(metrics_app(install_recorder(), db.store().clone())).await;
    let response = test::call_service(
        &scraper,
        test::TestRequest::get().uri("/metrics").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let body = test::read_body(response).await;
    String::from_utf8(body.to_vec()).expect("UTF-8 text")
}

/// The value of the one sample whose name and labels are exactly these.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|value| value.trim().parse().ok())
    })
}

#[actix_web::test]
async fn requests_are_counted_and_timed_by_route_pattern_method_and_status() {
    install_recorder();
    let db = TestDb::new().await;
    // A route with a path parameter, so that the pattern and the raw path differ.
    let app = test::init_service(App::new().wrap(from_fn(outer)).route(
        "/metrics-test/things/{id}",
        web::get().to(|| async { HttpResponse::Ok().finish() }),
    ))
    .await;
    for _ in 0..3 {
        let response = test::call_service(
            &app,
            test::TestRequest::get()
                .uri("/metrics-test/things/4f1c2f8e-raw-path")
                .to_request(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    let text = scrape(&db).await;
    let series =
        r#"http_requests_total{method="GET",route="/metrics-test/things/{id}",status="200"}"#;
    assert_eq!(sample(&text, series), Some(3.0), "{text}");
    assert!(
        !text.contains("4f1c2f8e-raw-path"),
        "raw paths must never become labels:\n{text}"
    );
    let count = r#"http_request_duration_seconds_count{method="GET",route="/metrics-test/things/{id}",status="200"}"#;
    assert_eq!(sample(&text, count), Some(3.0), "{text}");
    assert!(
        text.contains(r#"http_request_duration_seconds_bucket{method="GET",route="/metrics-test/things/{id}",status="200",le="0.005"}"#),
        "latency is a histogram with buckets:\n{text}"
    );
}

#[actix_web::test]
async fn the_real_app_is_measured_and_unknown_paths_share_one_label() {
    install_recorder();
    let db = TestDb::new().await;
    let app = test::init_service(projects_http::app(AppState::for_tests(db.store().clone()))).await;
    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = test::call_service(
        &app,
        test::TestRequest::delete()
            .uri("/no-such-route/12345")
            .to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let invented = actix_web::http::Method::from_bytes(b"INVENTED-METHOD").expect("a token");
    let response = test::call_service(
        &app,
        test::TestRequest::default()
            .method(invented)
            .uri("/health/live")
            .to_request(),
    )
    .await;
    assert!(response.status().is_client_error());

    let text = scrape(&db).await;
    assert!(!text.contains("INVENTED-METHOD"), "{text}");
    assert!(
        text.lines()
            .any(|line| line.starts_with("http_requests_total{method=\"OTHER\"")),
        "{text}"
    );
    let live = r#"http_requests_total{method="GET",route="/health/live",status="200"}"#;
    assert!(sample(&text, live).is_some_and(|n| n >= 1.0), "{text}");
    let unmatched = r#"http_requests_total{method="DELETE",route="unmatched",status="404"}"#;
    assert!(sample(&text, unmatched).is_some_and(|n| n >= 1.0), "{text}");
    assert!(!text.contains("no-such-route"), "{text}");
}

#[actix_web::test]
async fn the_pool_and_the_other_services_series_are_always_there() {
    install_recorder();
    let db = TestDb::new().await;
    let text = scrape(&db).await;
    let max = db.store().status().max_size as f64;
    assert_eq!(sample(&text, "db_pool_max_size"), Some(max), "{text}");
    for name in [
        "db_pool_size",
        "db_pool_available",
        "db_pool_waiting",
        "password_hash_queue_depth",
        "rate_limited_requests_total",
    ] {
        assert!(sample(&text, name).is_some(), "{name} missing:\n{text}");
        assert!(
            text.contains(&format!("# HELP {name} ")),
            "{name} has no description:\n{text}"
        );
    }
}

#[actix_web::test]
async fn the_metrics_app_serves_nothing_else() {
    let db = TestDb::new().await;
    let scraper = test::init_service(metrics_app(install_recorder(), db.store().clone())).await;
    let response = test::call_service(
        &scraper,
        test::TestRequest::get().uri("/health/live").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn the_job_queue_is_measured_from_the_table_at_scrape_time() {
    install_recorder();
    let db = TestDb::new().await;
    let jobs = db.store().jobs();
    for n in 0..3 {
        jobs.enqueue(&projects_store::NewJob::new(
            "metrics-test",
            serde_json::json!({ "n": n }),
            1,
        ))
        .await
        .unwrap();
    }
    let claimed = jobs
        .claim(std::time::Duration::from_secs(60), 1)
        .await
        .unwrap();
    jobs.fail(&claimed[0], "refused", std::time::Duration::ZERO, false)
        .await
        .unwrap();
    let text = scrape(&db).await;
    // One attempt allowed: the failed job is dead; two wait.
    assert_eq!(sample(&text, "jobs_queued"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "jobs_running"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "jobs_dead"), Some(1.0), "{text}");
    assert_eq!(sample(&text, "jobs_retrying"), Some(0.0), "{text}");
    assert!(
        sample(&text, "jobs_oldest_due_age_seconds").is_some_and(|age| age >= 0.0),
        "{text}"
    );
}

/// This process's resident memory, in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("resident pages");
    pages * 4096
}

// (`test` is actix-web's test module here.)
#[::core::prelude::v1::test]
fn latency_samples_nobody_scrapes_are_folded_not_kept() {
    // The recorder keeps each histogram sample (16 bytes) until it folds
    // them into the buckets: without a fold, a server nobody scrapes would
    // grow by 16 bytes per request for good. 3 × 2,000,000 samples, a fold
    // interval apart: kept, they would hold 96 MB.
    let _handle = install_recorder();
    let histogram = metrics::histogram!(
        projects_http::metrics::HTTP_REQUEST_DURATION_SECONDS,
        "method" => "GET",
        "route" => "/health/live",
        "status" => "200"
    );
    let before = resident_bytes();
    for _ in 0..3 {
        for _ in 0..2_000_000 {
            histogram.record(0.000_5);
        }
        std::thread::sleep(projects_http::metrics::UPKEEP_EVERY * 3 / 2);
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 48 << 20,
        "resident memory grew by {} MB for 6,000,000 samples",
        grown >> 20
    );
}
