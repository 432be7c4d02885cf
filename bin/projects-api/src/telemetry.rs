//! Logging: JSON lines by default, readable text with `LOG_FORMAT=pretty`;
//! the level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Without `RUST_LOG`: our own events at info, and refinery's at warn (at
/// info it logs the whole SQL of every migration it applies).
const DEFAULT_FILTER: &str = "info,refinery_core=warn";

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // tracing-subscriber's `json()` lines, written without re-parsing
        // span fields (see `json_log`).
        LogFormat::Json => builder
            .fmt_fields(crate::json_log::JsonMembers)
            .event_format(crate::json_log::JsonLines)
            .init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// For commands that do not need the whole configuration.
pub fn format_from_env() -> LogFormat {
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("pretty") => LogFormat::Pretty,
        _ => LogFormat::Json,
    }
}
