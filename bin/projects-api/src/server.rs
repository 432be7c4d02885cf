//! `serve` and `migrate`: the HTTP server with graceful shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::HttpServer;
use anyhow::Context as _;
use projects_auth::{PasswordHasher, StrengthEstimator, TokenService};
use projects_http::AppState;
use projects_http::rate_limit::RateLimits;
use projects_store::{Store, StoreConfig};
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;
use crate::periodic;

/// Connections of the background pool (the ended-sessions poll, cleanup,
/// the live-sessions gauge), on top of `DATABASE_POOL_SIZE`.
pub const BACKGROUND_POOL_SIZE: usize = 2;
/// How often dead sessions are cleaned up (on one instance at a time).
const CLEANUP_PERIOD: Duration = Duration::from_secs(60);
/// How often the live-sessions gauge is refreshed.
const LIVE_GAUGE_PERIOD: Duration = Duration::from_secs(30);
/// How often each instance tries the cleanup of expired idempotency keys
/// (one instance at a time does it).
const IDEMPOTENCY_CLEANUP_PERIOD: Duration = Duration::from_secs(300);

/// Each password-strength estimate runs in a child process of this binary
/// (`password-strength`), so that zxcvbn's dictionaries leave with it
/// instead of staying resident in the server (see `StrengthEstimator`).
/// On Linux through `/proc/self/exe`: this very binary, even after an
/// upgrade replaced its file.
fn strength_estimator() -> StrengthEstimator {
    own_binary().map_or(StrengthEstimator::InProcess, |program| {
        StrengthEstimator::Child {
            program,
            args: vec!["password-strength".into()],
        }
    })
}

/// This very binary: `/proc/self/exe` on Linux (the running file, even
/// after an upgrade replaced it on disk), else what the OS reports.
fn own_binary() -> Option<PathBuf> {
    if cfg!(target_os = "linux") {
        Some("/proc/self/exe".into())
    } else {
        std::env::current_exe().ok()
    }
}

pub async fn migrate(database: StoreConfig) -> anyhow::Result<()> {
    let store = Store::connect(&database).context("invalid DATABASE_URL")?;
    let applied = store.migrate().await.context("cannot apply migrations")?;
    tracing::info!(migrations.applied = applied, "database is up to date");
    store.close();
    Ok(())
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    // actix's own default: one worker per core.
    let workers = config.server.http_workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    // One shard of the pool per worker (see `Store`): each worker's queries
    // stay on its own thread.
    let mut store_config = config.database.clone();
    store_config.shards = workers;
    let store = Store::connect(&store_config).context("invalid DATABASE_URL")?;
    refuse_unbounded_statements(&store).await?;
    let passwords = PasswordHasher::default().with_strength_estimator(strength_estimator());
    passwords.warm_up().await.context("cannot hash passwords")?;
    let metrics = config
        .server
        .metrics_addr
        .map(|addr| crate::metrics_listener::start(addr, store.clone()))
        .transpose()?;
    let metrics_handle = metrics.as_ref().map(actix_web::dev::Server::handle);
    let mailer =
        projects_mail::Mailer::new(&config.mail.mailer).context("invalid mail configuration")?;
    match mailer.mail_dir() {
        Some(dir) => tracing::warn!(
            mail.dir = %dir.display(),
            "SMTP_URL is not set: mail is written as .eml files into MAIL_DIR"
        ),
        None => tracing::info!(mail.transport = %mailer.describe(), "sending mail"),
    }
    // The job worker of this instance, on its own shard-0 handle; it stops
    // with the server.
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    let stop_worker = Arc::new(stop_worker);
    let stop_worker_at_exit = stop_worker.clone();
    let worker = tokio::spawn(
        projects_store::Worker::new(
            store.clone(),
            crate::worker::Jobs {
                store: store.clone(),
                mailer,
                tokens: projects_auth::AccountTokenKey::new(config.tokens.secret.clone()),
                public_app_url: config.mail.public_app_url.clone(),
                accounts: config.mail.accounts.clone(),
            },
            crate::worker::worker_config(config.server.shutdown_grace),
        )
        .run(worker_stopped),
    );
    // Built once, outside the per-worker factory, so that every worker
    // counts against the same allowances.
    let rate_limits = RateLimits::new(&config.http.rate_limits).context("invalid REDIS_URL")?;
    let mut state = AppState::new(
        store.clone(),
        config.http.clone(),
        TokenService::new(config.tokens.clone()),
        passwords,
        rate_limits,
    );
    state.accounts = config.mail.accounts.clone();
    let background = start_background(&config, &state).await?;
    let drain = state.drain.clone();
    let drain_for = config.server.shutdown_drain;
    // actix calls the factory once per worker, on that worker's thread.
    let next_shard = Arc::new(AtomicUsize::new(0));
    let client_timeout = config.server.client_timeout;
    let open_files = crate::connections::raise_open_files_limit();
    let max_connections = crate::connections::per_worker(open_files, workers);
    tracing::info!(
        open_files.limit = open_files,
        connections.per_worker = max_connections,
        client_timeout_s = client_timeout.as_secs(),
        "connection limits"
    );
    let server = HttpServer::new(move || {
        let mut state = state.clone();
        state.store = state
            .store
            .shard(next_shard.fetch_add(1, Ordering::Relaxed));
        projects_http::app(state)
    })
    .workers(workers)
    // Slow clients (see `projects_http::client_deadline`): the watchdog
    // closes them, without a word. actix's own first-head timer is off: it
    // would answer 408 with an empty body, and every error we send is a
    // problem response. actix's idle keep-alive timer closes silently too.
    // And a bound on connections within the descriptors we have.
    .client_request_timeout(Duration::ZERO)
    .keep_alive(client_timeout.min(Duration::from_secs(5)))
    .on_connect(projects_http::client_deadline::on_connect(client_timeout))
    .max_connections(max_connections)
    .bind(config.server.bind_addr)
    .with_context(|| format!("cannot listen on {}", config.server.bind_addr))?
    // Our own handler below stops gracefully on SIGINT as well as
    // SIGTERM (actix would stop at once on SIGINT).
    .disable_signals()
    .shutdown_timeout(config.server.shutdown_grace.as_secs())
    .run();
    let handle = server.handle();
    tracing::info!(bind_addr = %config.server.bind_addr, "listening");

    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let stopper = tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        if !drain_for.is_zero() {
            // Readiness fails at once; the load balancer notices on its next
            // check and sends nothing new, while we keep serving what comes.
            drain.start();
            tracing::info!(
                signal = name,
                drain_seconds = drain_for.as_secs(),
                "draining: readiness answers 503, still serving"
            );
            tokio::select! {
                () = tokio::time::sleep(drain_for) => {}
                // A second signal cuts the drain short.
                _ = terminate.recv() => {}
                _ = interrupt.recv() => {}
            }
        }
        tracing::info!(signal = name, "shutting down: finishing in-flight requests");
        // The worker finishes or releases its jobs meanwhile.
        let _ = stop_worker.send(true);
        handle.stop(true).await;
        // Scrapes keep working while in-flight requests finish.
        if let Some(metrics) = metrics_handle {
            metrics.stop(true).await;
        }
    });

    let metrics = metrics.map(tokio::spawn);
    server.await.context("the server failed")?;
    if let Some(metrics) = metrics {
        metrics
            .await
            .context("the metrics server panicked")?
            .context("the metrics server failed")?;
    }
    stopper.abort();
    for task in background.tasks {
        task.abort();
    }
    background.store.close();
    // Stopped by the signal handler already, or now if the server ended
    // otherwise.
    let _ = stop_worker_at_exit.send(true);
    if let Err(error) = tokio::time::timeout(config.server.shutdown_grace, worker).await {
        tracing::warn!(error = %error, "the job worker did not stop in time");
    }
    store.close();
    tracing::info!("stopped");
    Ok(())
}

/// The start-up self-check: every wait on the database must be bounded.
/// Behind a pooler that drops the timeouts (PgBouncer's
/// `ignore_startup_parameters = options` with prepared statements on) the
/// server refuses to serve. A database that cannot be reached now is no
/// reason to refuse: readiness runs the same check until it passes.
async fn refuse_unbounded_statements(store: &Store) -> anyhow::Result<()> {
    let (prepared, per_transaction) = store.describe_session();
    match store.timeouts_in_effect().await {
        Ok(true) => {
            tracing::info!(
                db.prepared_statements = prepared,
                db.timeouts_per_transaction = per_transaction,
                "statements run under the configured timeouts"
            );
            Ok(())
        }
        Ok(false) => anyhow::bail!(
            "the database connections do not run under DATABASE_TIMEOUT_MS (statement and \
             lock timeouts): a pooler that drops the startup options? Behind a \
             transaction-pooling proxy set DATABASE_PREPARED_STATEMENTS=false, which sets \
             them in every transaction"
        ),
        Err(error) => {
            tracing::warn!(
                error = ?error,
                "cannot check the database timeouts yet; readiness stays 503 until they hold"
            );
            Ok(())
        }
    }
}

/// The background work and the small pool it runs on (its own, so that
/// no worker's connections are used from another thread).
struct Background {
    store: Store,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Loads the sessions that ended within the access-token lifetime (so that
/// none of their tokens works here from the first request), then follows
/// the other instances' endings, and starts the periodic session jobs.
async fn start_background(config: &Config, state: &AppState) -> anyhow::Result<Background> {
    let mut background_config = config.database.clone();
    background_config.pool_size = BACKGROUND_POOL_SIZE;
    let store = Store::connect(&background_config).context("invalid DATABASE_URL")?;
    let revocations = Arc::clone(&state.revocations);
    let cursor = match revocations.reload(&store).await {
        Ok(cursor) => {
            tracing::info!(
                sessions.ended = revocations.len(),
                "loaded the recently ended sessions"
            );
            cursor
        }
        Err(error) => {
            // The first poll loads them as soon as the database answers.
            tracing::warn!(error = ?error, "cannot load the recently ended sessions yet");
            0
        }
    };
    let mut tasks = revocations
        .follow(
            store.clone(),
            config.http.rate_limits.redis_url.as_ref(),
            cursor,
            projects_http::revocations::POLL_INTERVAL,
        )
        .context("invalid REDIS_URL")?;
    let window = revocations.window();
    let cleanup_store = store.clone();
    tasks.push(periodic::every(
        "session_cleanup",
        CLEANUP_PERIOD,
        move || {
            let store = cleanup_store.clone();
            async move { periodic::clean_up_sessions(&store, window).await.map(drop) }
        },
    ));
    let gauge_store = store.clone();
    tasks.push(periodic::every(
        "live_sessions_gauge",
        LIVE_GAUGE_PERIOD,
        move || {
            let store = gauge_store.clone();
            async move { periodic::count_live_sessions(&store).await }
        },
    ));
    let keys_store = store.clone();
    tasks.push(periodic::every(
        "idempotency_key_cleanup",
        IDEMPOTENCY_CLEANUP_PERIOD,
        move || {
            let store = keys_store.clone();
            async move { periodic::expire_idempotency_keys(&store).await }
        },
    ));
    Ok(Background { store, tasks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_binary_is_this_process() {
        let own = own_binary().expect("a path");
        assert_eq!(
            std::fs::canonicalize(own).expect("resolves"),
            std::fs::canonicalize(std::env::current_exe().expect("current_exe")).expect("resolves")
        );
    }
}
