//! The metrics listener: `/metrics` on its own address (`METRICS_ADDR`), so
//! that the scrape is never exposed on the public one. It stops with the
//! main server.

use std::net::SocketAddr;

use actix_web::HttpServer;
use actix_web::dev::Server;
use anyhow::Context as _;
use projects_store::Store;

/// Installs the recorder and starts serving the scrape at `addr`. One worker
/// is plenty for a scraper every few seconds.
pub fn start(addr: SocketAddr, store: Store) -> anyhow::Result<Server> {
    let handle = projects_http::metrics::install_recorder();
    let server =
        HttpServer::new(move || projects_http::metrics::metrics_app(handle.clone(), store.clone()))
            .workers(1)
            .bind(addr)
            .with_context(|| format!("cannot listen on METRICS_ADDR {addr}"))?
            // The main server's signal handler stops this one too.
            .disable_signals()
            .shutdown_timeout(1)
            .run();
    tracing::info!(metrics_addr = %addr, "serving metrics");
    Ok(server)
}
