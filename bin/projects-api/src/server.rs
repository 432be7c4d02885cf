//! `serve` and `migrate`: the HTTP server with graceful shutdown.

use actix_web::HttpServer;
use anyhow::Context as _;
use projects_auth::{PasswordHasher, TokenConfig, TokenService};
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
    let passwords = PasswordHasher::default();
    passwords.warm_up().await.context("cannot hash passwords")?;
    let state = AppState::new(
        store.clone(),
        HttpConfig {
            body_limit: config.body_limit,
        },
        TokenService::new(token_config(&config)),
        passwords,
    );
    let mut server = HttpServer::new(move || projects_http::app(state.clone()));
    if let Some(workers) = config.http_workers {
        server = server.workers(workers);
    }
    let server = server
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

/// The access- and refresh-token settings of the configuration.
fn token_config(config: &Config) -> TokenConfig {
    TokenConfig {
        secret: config.jwt_secret.clone(),
        issuer: config.jwt_issuer.clone(),
        audience: config.jwt_audience.clone(),
        access_ttl: config.access_token_ttl,
        refresh_ttl: config.refresh_token_ttl,
    }
}
