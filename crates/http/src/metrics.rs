//! Prometheus metrics: the names of every metric (the middleware that counts
//! and times requests is `middleware::request_metrics`); the pool gauges,
//! read at scrape time;
//! and the small app that serves the scrape (on its own listener, so that
//! `/metrics` is never reachable through the public address).
//!
//! Other modules record through the `metrics` facade macros with the names
//! below; `install_recorder` describes them all, and registers the ones that
//! may stay untouched for a long time at zero, so that a dashboard or an
//! alert sees the series before the first event.

use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{App, HttpResponse, web};
use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use projects_store::Store;

/// Requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "http_requests_total";
/// Request latency in seconds, by `method`, `route` and `status`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "http_request_duration_seconds";
/// Connections the pool holds now.
pub const DB_POOL_SIZE: &str = "db_pool_size";
/// Idle connections in the pool.
pub const DB_POOL_AVAILABLE: &str = "db_pool_available";
/// Requests waiting for a connection.
pub const DB_POOL_WAITING: &str = "db_pool_waiting";
/// The most connections the pool may open.
pub const DB_POOL_MAX_SIZE: &str = "db_pool_max_size";
/// Password hashes queued or running on the bounded hashing pool (a gauge,
/// set by the auth layer).
pub const PASSWORD_HASH_QUEUE_DEPTH: &str = "password_hash_queue_depth";
/// Requests refused with 429 by the rate limiter (a counter, incremented by
/// the rate-limit middleware).
pub const RATE_LIMITED_REQUESTS_TOTAL: &str = "rate_limited_requests_total";
/// Limit checks answered from this instance's memory because Redis was
/// failing or not answering within `REDIS_TIMEOUT_MS` (a counter).
pub const RATE_LIMIT_REDIS_FALLBACKS_TOTAL: &str = crate::rate_limit::FALLBACKS_COUNTER;

/// Jobs waiting to run (due or not), read from the job table at scrape time.
pub const JOBS_QUEUED: &str = "jobs_queued";
/// Jobs a worker holds now.
pub const JOBS_RUNNING: &str = "jobs_running";
/// Queued jobs that failed at least once and wait for their retry.
pub const JOBS_RETRYING: &str = "jobs_retrying";
/// Jobs given up after their last attempt; they stay until deleted.
pub const JOBS_DEAD: &str = "jobs_dead";
/// How long the oldest due job has waited, in seconds (0 when none is due).
pub const JOBS_OLDEST_DUE_AGE_SECONDS: &str = "jobs_oldest_due_age_seconds";
/// Live sessions (a gauge, refreshed periodically by the binary, never per
/// request).
pub const SESSIONS_LIVE: &str = "sessions_live";
/// Sessions ended, by `reason` (logout, revoked, reuse, password_change,
/// password_reset, user_deleted).
pub const SESSIONS_ENDED_TOTAL: &str = "sessions_ended_total";
/// Seconds from a session's ending (database clock) to this instance
/// learning of it from another instance (Redis or the feed poll).
pub const SESSION_REVOCATION_DELAY_SECONDS: &str = "session_revocation_delay_seconds";

/// The `route` label of a request that matched no route: raw paths would
/// let any client create series without bound.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The `method` label of a request whose method is not a standard one.
pub const OTHER_METHOD: &str = "OTHER";

/// Latency buckets in seconds: from a cached JWT check (sub-millisecond) to
/// a pool timeout (5 s by default).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Revocation delay buckets in seconds, around the one-second promise.
const REVOCATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often the recorder folds the histograms' samples into their
/// buckets. Until then it keeps every sample (16 bytes each): unscraped,
/// the latency histogram alone grew by 16 bytes per request for good
/// (556 KB after 34,000 requests under massif).
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether this module's recorder is installed (`METRICS_ADDR` not off).
pub(crate) fn recorder_installed() -> bool {
    HANDLE.get().is_some()
}

/// Installs the process-wide Prometheus recorder (once; later calls return
/// the same handle), describes every metric of the service, and starts the
/// thread that folds the histograms' samples every [`UPKEEP_EVERY`]
/// (the scrape folds them too, but nothing says one comes).
///
/// # Panics
///
/// If another `metrics` recorder was installed first: that is a
/// programming error, and metrics would silently go nowhere otherwise.
/// Also if the upkeep thread cannot start (at start-up, out of threads):
/// without it the recorder would grow with every request.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION_SECONDS.to_owned()),
                    LATENCY_BUCKETS,
                )
                .expect("the latency buckets are not empty")
                .set_buckets_for_metric(
                    Matcher::Full(SESSION_REVOCATION_DELAY_SECONDS.to_owned()),
                    REVOCATION_BUCKETS,
                )
                .expect("the revocation buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            describe();
            let upkeep = handle.clone();
            // A thread rather than a task: the recorder outlives every
            // runtime, and the work is a few microseconds a second.
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .expect("the metrics upkeep thread starts");
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS_TOTAL, "HTTP requests answered");
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from receiving a request to producing its response"
    );
    describe_gauge!(DB_POOL_SIZE, "Database connections held by the pool");
    describe_gauge!(DB_POOL_AVAILABLE, "Idle database connections in the pool");
    describe_gauge!(
        DB_POOL_WAITING,
        "Requests waiting for a database connection"
    );
    describe_gauge!(DB_POOL_MAX_SIZE, "Most database connections the pool opens");
    describe_gauge!(
        PASSWORD_HASH_QUEUE_DEPTH,
        "Password hashes waiting for or running on the hashing pool"
    );
    describe_counter!(
        RATE_LIMITED_REQUESTS_TOTAL,
        "Requests refused with 429 by the rate limiter"
    );
    describe_gauge!(JOBS_QUEUED, "Background jobs waiting to run");
    describe_gauge!(JOBS_RUNNING, "Background jobs a worker holds now");
    describe_gauge!(
        JOBS_RETRYING,
        "Background jobs waiting for a retry after a failed attempt"
    );
    describe_gauge!(
        JOBS_DEAD,
        "Background jobs given up after their last attempt"
    );
    describe_gauge!(
        JOBS_OLDEST_DUE_AGE_SECONDS,
        Unit::Seconds,
        "How long the oldest due background job has waited"
    );
    describe_counter!(
        projects_store::JOBS_COMPLETED_TOTAL,
        "Background jobs finished, by kind"
    );
    describe_counter!(
        projects_store::JOBS_RETRIED_TOTAL,
        "Failed background-job attempts queued again, by kind"
    );
    describe_counter!(
        projects_store::JOBS_DEAD_TOTAL,
        "Background jobs given up, by kind"
    );
    describe_counter!(
        RATE_LIMIT_REDIS_FALLBACKS_TOTAL,
        "Limit checks answered from memory because Redis failed or did not answer in time"
    );
    describe_gauge!(SESSIONS_LIVE, "Sessions neither ended nor expired");
    describe_counter!(SESSIONS_ENDED_TOTAL, "Sessions ended, by reason");
    describe_histogram!(
        SESSION_REVOCATION_DELAY_SECONDS,
        Unit::Seconds,
        "Time from a session's ending to this instance learning of it from another"
    );
    for reason in projects_domain::SessionEndReason::ALL {
        counter!(SESSIONS_ENDED_TOTAL, "reason" => reason.as_str()).absolute(0);
    }
    // Shown at zero from the start, so that an alert on them works before
    // the first event.
    gauge!(PASSWORD_HASH_QUEUE_DEPTH).set(0.0);
    counter!(RATE_LIMITED_REQUESTS_TOTAL).absolute(0);
    counter!(RATE_LIMIT_REDIS_FALLBACKS_TOTAL).absolute(0);
}

/// Sets the pool gauges from a snapshot of the pool.
pub fn record_pool(store: &Store) {
    let status = store.status();
    // Pool sizes are small; the conversion to f64 is exact.
    gauge!(DB_POOL_SIZE).set(status.size as f64);
    gauge!(DB_POOL_AVAILABLE).set(status.available as f64);
    gauge!(DB_POOL_WAITING).set(status.waiting as f64);
    gauge!(DB_POOL_MAX_SIZE).set(status.max_size as f64);
}

/// Sets the job gauges from the job table. A database that does not answer
/// leaves them as they were (the pool gauges and the logs tell why).
pub async fn record_jobs(store: &Store) {
    match store.jobs().stats().await {
        Ok(stats) => {
            // Counts of rows; far below 2^53, so exact in f64.
            gauge!(JOBS_QUEUED).set(stats.queued as f64);
            gauge!(JOBS_RUNNING).set(stats.running as f64);
            gauge!(JOBS_RETRYING).set(stats.retrying as f64);
            gauge!(JOBS_DEAD).set(stats.dead as f64);
            gauge!(JOBS_OLDEST_DUE_AGE_SECONDS).set(stats.oldest_due_age.as_secs_f64());
        }
        Err(error) => {
            tracing::warn!(error = %error, error.detail = ?error, "cannot read the job counts");
        }
    }
}

/// The scrape: the pool and the job table read now, then everything in
/// Prometheus' text format.
async fn scrape(handle: web::Data<PrometheusHandle>, store: web::Data<Store>) -> HttpResponse {
    record_pool(&store);
    record_jobs(&store).await;
    handle.run_upkeep();
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(handle.render())
}

/// The metrics listener's app: `GET /metrics` and nothing else.
pub fn metrics_app(
    handle: PrometheusHandle,
    store: Store,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(handle))
        .app_data(web::Data::new(store))
        .route("/metrics", web::get().to(scrape))
}
