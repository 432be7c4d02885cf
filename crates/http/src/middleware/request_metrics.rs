//! The request metrics: every request counted and timed by method, route
//! pattern and status (the names are in `crate::metrics`), by the outer
//! layer (`middleware::outer`).

use std::cell::RefCell;
use std::time::Duration;

use actix_web::dev::ServiceRequest;
use actix_web::http::{Method, StatusCode};
use metrics::{Counter, Histogram, counter, histogram};

use crate::metrics::{
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, OTHER_METHOD, UNMATCHED_ROUTE,
};

/// The handles of one route's series: one per method and status it has
/// answered with (a handful).
type RouteSeries = Vec<(&'static str, u16, Counter, Histogram)>;

thread_local! {
    /// The handles of the request series this worker has recorded, by route
    /// pattern, so that a request costs one small map lookup by the route
    /// it matched (no key built, nothing allocated) instead of building a
    /// key with three owned labels and looking it up in the recorder twice.
    /// Bounded by routes × methods × statuses (the route is a pattern, never
    /// a raw path). Hashed with foldhash: the keys are our route patterns,
    /// never a client's text.
    static SERIES: RefCell<foldhash::HashMap<String, RouteSeries>> =
        RefCell::new(foldhash::HashMap::default());
}

/// Counts and times one request (on `crate::metrics`' recorder, which is
/// installed).
fn record(method: &'static str, route: &str, status: u16, seconds: f64) {
    SERIES.with(|cache| {
        let mut cache = cache.borrow_mut();
        let known = cache.get(route).and_then(|series| {
            series
                .iter()
                .find(|(m, s, _, _)| *m == method && *s == status)
        });
        if let Some((_, _, count, duration)) = known {
            count.increment(1);
            duration.record(seconds);
            return;
        }
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let count = counter!(HTTP_REQUESTS_TOTAL, &labels);
        let duration = histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels);
        count.increment(1);
        duration.record(seconds);
        cache
            .entry(route.to_owned())
            .or_default()
            .push((method, status, count, duration));
    });
}

/// The timing of one request, from the outer layer (`middleware::outer`).
pub(crate) struct RequestTimer {
    method: &'static str,
}

impl RequestTimer {
    /// `None` without the recorder (`METRICS_ADDR=off`): there is nowhere to
    /// record to, and the facade's no-op handles would still cost a key with
    /// three owned labels per request. (Series handles are only kept once
    /// the recorder is installed, too: no-op handles taken before would stay
    /// no-ops.)
    pub(crate) fn start(request: &ServiceRequest) -> Option<Self> {
        crate::metrics::recorder_installed().then(|| Self {
            method: method_label(request.method()),
        })
    }

    /// Counts and times the request: `route` is the matched pattern
    /// (`/api/v1/projects/{id}`), never the raw path; `None` when no route
    /// matched. `elapsed` is the request's time so far (the outer layer reads
    /// the clock once for the log line and the metrics).
    pub(crate) fn record(self, status: StatusCode, route: Option<&str>, elapsed: Duration) {
        record(
            self.method,
            route.unwrap_or(UNMATCHED_ROUTE),
            status.as_u16(),
            elapsed.as_secs_f64(),
        );
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
