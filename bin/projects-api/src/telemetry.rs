//! Logging: JSON lines by default, readable text with `LOG_FORMAT=pretty`;
//! the level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

use crate::config::LogFormat;

/// Without `RUST_LOG`: our own events at info, and refinery's at warn (at
/// info it logs the whole SQL of every migration it applies).
const DEFAULT_FILTER: &str = "info,refinery_core=warn";

pub fn init(format: LogFormat) {
    let subscriber = tracing_subscriber::registry().with(filter());
    let layer = fmt::layer().with_writer(std::io::stderr);
    match format {
        // tracing-subscriber's `json()` lines, written without re-parsing
        // span fields (see `json_log`).
        LogFormat::Json => subscriber
            .with(
                layer
                    .fmt_fields(crate::json_log::JsonMembers)
                    .event_format(crate::json_log::JsonLines),
            )
            .init(),
        LogFormat::Pretty => subscriber.with(layer).init(),
    }
}

type Filter = Box<dyn Layer<Registry> + Send + Sync>;

/// The filter `RUST_LOG` asks for (`DEFAULT_FILTER` when it is unset or
/// invalid). Directives by target and level only (the usual case) make a
/// `Targets`, which decides once per call site; `EnvFilter` gives the same
/// answers, but also keeps track of every span for the span and field
/// directives it may have (a lock and a hash lookup when each span is
/// created, entered, exited, recorded and closed: about a thousand
/// instructions per request). Directives with spans or fields keep it.
fn filter() -> Filter {
    let (directives, filter) = match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(directives) => match EnvFilter::builder().parse(&directives) {
            Ok(filter) => (directives, filter),
            Err(_) => default_filter(),
        },
        Err(_) => default_filter(),
    };
    match targets_only(&directives) {
        Some(targets) => Box::new(targets),
        None => Box::new(filter),
    }
}

fn default_filter() -> (String, EnvFilter) {
    (DEFAULT_FILTER.to_owned(), EnvFilter::new(DEFAULT_FILTER))
}

/// The directives as a `Targets` when they name only targets and levels
/// (as `EnvFilter` reads them: empty directives skipped).
fn targets_only(directives: &str) -> Option<Targets> {
    if directives.contains(['[', '{']) {
        return None;
    }
    let directives: Vec<&str> = directives.split(',').filter(|s| !s.is_empty()).collect();
    if directives.is_empty() {
        return None;
    }
    directives.join(",").parse().ok()
}

/// For commands that do not need the whole configuration.
pub fn format_from_env() -> LogFormat {
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("pretty") => LogFormat::Pretty,
        _ => LogFormat::Json,
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn target_and_level_directives_make_targets_that_filter_as_env_filter_does() {
        let default = targets_only(DEFAULT_FILTER).expect("targets and levels only");
        assert!(default.would_enable("projects_http::middleware::outer", &Level::INFO));
        assert!(!default.would_enable("projects_http::middleware::outer", &Level::DEBUG));
        assert!(!default.would_enable("refinery_core::traits", &Level::INFO));
        assert!(default.would_enable("refinery_core::traits", &Level::WARN));
        // Empty directives are skipped, as `EnvFilter` skips them.
        let trailing = targets_only("warn,projects_http=debug,").expect("targets and levels");
        assert!(trailing.would_enable("projects_http::auth", &Level::DEBUG));
        assert!(!trailing.would_enable("projects_store", &Level::INFO));
        assert!(trailing.would_enable("projects_store", &Level::WARN));
        // Nothing to filter by, or span and field directives: `EnvFilter`.
        assert!(targets_only("").is_none());
        assert!(targets_only(",").is_none());
        assert!(targets_only("info,projects_http[request]=debug").is_none());
        assert!(targets_only("info,[{user.id}]=debug").is_none());
    }
}
