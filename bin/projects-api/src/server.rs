//! `serve` and `migrate`: the HTTP server with graceful shutdown.

use actix_web::HttpServer;
use anyhow::Context as _;
use projects_http::rate_limit::{RateLimitConfig, RateLimits};
use projects_http::{AppState, HttpConfig};
use projects_store::Store;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{Config, DatabaseConfig};

pub async fn migrate(database: DatabaseConfig) -> anyhow::Result<()> {
    let store = Store::connect(&database.store_config()).context("invalid DATABASE_URL")?;
    let applied = store.migrate().await.context("cannot apply migrations")?;
    tracing::info!(migrations.applied = applied, "database is up to date");
    store.close();
    Ok(())
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database.store_config()).context("invalid DATABASE_URL")?;
    if config.migrate_on_start {
        let applied = store.migrate().await.context("cannot apply migrations")?;
        tracing::info!(migrations.applied = applied, "database is up to date");
    }
    let http_config = HttpConfig {
        body_limit: config.body_limit,
        cors_origins: config.cors_origins.clone(),
        hsts_seconds: config.hsts_seconds,
        rate_limits: RateLimitConfig {
            per_second: config.rate_limit_per_second,
            burst: config.rate_limit_burst,
            auth_per_minute: config.auth_rate_limit_per_minute,
            redis_url: config.redis_url.clone(),
            trust_forwarded_for: config.trust_forwarded_for,
        },
    };
    // Built once, outside the per-worker factory, so that every worker
    // counts against the same allowances.
    let rate_limits = RateLimits::new(&http_config.rate_limits).context("invalid REDIS_URL")?;
    let state = AppState::with_rate_limits(store.clone(), http_config, rate_limits);
    let server = HttpServer::new(move || projects_http::app(state.clone()))
        .bind(config.bind_addr)
        .with_context(|| format!("cannot listen on {}", config.bind_addr))?
        // Our own handler below stops gracefully on SIGINT as well as
        // SIGTERM (actix would stop at once on SIGINT).
        .disable_signals()
        .shutdown_timeout(config.shutdown_grace.as_secs())
        .run();
    let handle = server.handle();
    tracing::info!(bind_addr = %config.bind_addr, "listening");

    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let stopper = tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing in-flight requests");
        handle.stop(true).await;
    });

    server.await.context("the server failed")?;
    stopper.abort();
    store.close();
    tracing::info!("stopped");
    Ok(())
}
