//! The `server` section: what the binary itself uses (listeners, workers,
//! client deadlines, shutdown, migrations at start, log format).

use std::net::SocketAddr;
use std::time::Duration;

use super::env::{ConfigError, Env};

/// Log output: JSON lines for machines, or coloured text for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `BIND_ADDR`: the public listener.
    pub bind_addr: SocketAddr,
    /// `METRICS_ADDR`: where `/metrics` is served; `None` serves no metrics.
    pub metrics_addr: Option<SocketAddr>,
    /// `HTTP_WORKERS`: worker threads; `None` (0): one per core, actix's
    /// default. See bench/README.md for the measurements behind it.
    pub http_workers: Option<usize>,
    /// `CLIENT_TIMEOUT_SECONDS`: how long a client may take to send a
    /// request head or body, or to start its next request.
    pub client_timeout: Duration,
    /// `SHUTDOWN_GRACE_SECONDS`: how long in-flight requests and the job
    /// worker may take to finish.
    pub shutdown_grace: Duration,
    /// `SHUTDOWN_DRAIN_SECONDS`: after SIGTERM, how long readiness answers
    /// 503 while requests are still served, before the graceful shutdown.
    pub shutdown_drain: Duration,
    /// `MIGRATE_ON_START`.
    pub migrate_on_start: bool,
    /// `LOG_FORMAT`: `json` or `pretty`.
    pub log_format: LogFormat,
}

pub fn read(env: &Env<'_>) -> Result<ServerConfig, ConfigError> {
    Ok(ServerConfig {
        bind_addr: env.parsed("BIND_ADDR", default_bind_addr())?,
        metrics_addr: metrics_addr(env)?,
        http_workers: match env.parsed("HTTP_WORKERS", 0usize)? {
            0 => None,
            workers => Some(workers),
        },
        client_timeout: Duration::from_secs(env.positive("CLIENT_TIMEOUT_SECONDS", 10)?),
        shutdown_grace: Duration::from_secs(env.parsed("SHUTDOWN_GRACE_SECONDS", 30)?),
        shutdown_drain: Duration::from_secs(env.parsed("SHUTDOWN_DRAIN_SECONDS", 0)?),
        migrate_on_start: env.flag("MIGRATE_ON_START", true)?,
        log_format: log_format(env)?,
    })
}

/// `BIND_ADDR` alone, for `projects-api healthcheck`.
pub fn bind_addr_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, ConfigError> {
    Env::new(&lookup).parsed("BIND_ADDR", default_bind_addr())
}

fn default_bind_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// `METRICS_ADDR`: a separate listener, so that `/metrics` never shares the
/// public address. Unset: loopback port 9090; `off` or set but empty: none.
fn metrics_addr(env: &Env<'_>) -> Result<Option<SocketAddr>, ConfigError> {
    const NAME: &str = "METRICS_ADDR";
    match env.raw(NAME).map(|raw| raw.trim().to_owned()) {
        None => Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9090)))),
        Some(raw) if raw.is_empty() || raw.eq_ignore_ascii_case("off") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| ConfigError {
            variable: NAME,
            problem: format!("must be host:port or off, not {raw:?}"),
        }),
    }
}

fn log_format(env: &Env<'_>) -> Result<LogFormat, ConfigError> {
    match env.get("LOG_FORMAT").as_deref().map(str::trim) {
        None | Some("json") => Ok(LogFormat::Json),
        Some("pretty") => Ok(LogFormat::Pretty),
        Some(other) => Err(ConfigError {
            variable: "LOG_FORMAT",
            problem: format!("must be json or pretty, not {other:?}"),
        }),
    }
}
