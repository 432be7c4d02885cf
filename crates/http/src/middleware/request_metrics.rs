//! The request metrics: every request counted and timed by method, route
//! pattern and status (the names are in `crate::metrics`), by the outer
//! layer (`middleware::outer`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode};
use metrics::{Counter, Histogram, counter, histogram};

use crate::metrics::{
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, OTHER_METHOD, UNMATCHED_ROUTE,
};

/// One request series: its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Series {
    method: &'static str,
    route: String,
    status: u16,
}

thread_local! {
    /// The handles of the request series this worker has recorded, so that
    /// a request costs one small map lookup instead of building a key with
    /// three owned labels and looking it up in the recorder twice. Bounded
    /// by routes × methods × statuses (the route is a pattern, never a raw
    /// path).
    static SERIES: RefCell<HashMap<Series, (Counter, Histogram)>> = RefCell::new(HashMap::new());
}

/// Counts and times one request of a series (on `crate::metrics`'
/// recorder, which is installed).
fn record(series: Series, seconds: f64) {
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((count, duration)) = cache.get(&series) {
            count.increment(1);
            duration.record(seconds);
            return;
        }
        let labels = [
            ("method", series.method.to_owned()),
            ("route", series.route.clone()),
            ("status", series.status.to_string()),
        ];
        let count = counter!(HTTP_REQUESTS_TOTAL, &labels);
        let duration = histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels);
        count.increment(1);
        duration.record(seconds);
        cache.insert(series, (count, duration));
    });
}

/// The timing of one request, from the outer layer (`middleware::outer`).
pub(crate) struct RequestTimer {
    method: &'static str,
    started: Instant,
}

impl RequestTimer {
    /// `None` without the recorder (`METRICS_ADDR=off`): there is nowhere to
    /// record to, and the facade's no-op handles would still cost a key with
    /// three owned labels per request. (Series handles are only kept once
    /// the recorder is installed, too: no-op handles taken before would stay
    /// no-ops.)
    pub(crate) fn start(request: &ServiceRequest, started: Instant) -> Option<Self> {
        crate::metrics::recorder_installed().then(|| Self {
            method: method_label(request.method()),
            started,
        })
    }

    /// Counts and times the request: `route` is the matched pattern
    /// (`/api/v1/projects/{id}`), never the raw path; `None` when no route
    /// matched.
    pub(crate) fn record(self, status: StatusCode, route: Option<String>) {
        let series = Series {
            method: self.method,
            route: route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
            status: status.as_u16(),
        };
        record(series, self.started.elapsed().as_secs_f64());
    }
}

/// The `method` label: the standard methods by name, any other (HTTP lets a
/// client send any token) as `OTHER`, so that clients cannot create series
/// without bound.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    STANDARD
        .iter()
        .find(|(standard, _)| standard == method)
        .map_or(OTHER_METHOD, |(_, name)| name)
}
