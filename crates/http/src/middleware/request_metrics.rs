//! The request metrics: every request counted and timed by method, route
//! pattern and status (the names are in `crate::metrics`).

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use metrics::{counter, histogram};

use crate::metrics::{
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, OTHER_METHOD, UNMATCHED_ROUTE,
};

/// Middleware (`App::wrap(from_fn(record_request))`) that counts and times
/// every request by method, matched route pattern and status.
pub async fn record_request(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    // Kept only for a failure, which comes back without its request.
    let path = request.path().to_owned();
    let result = next.call(request).await;
    // The pattern (`/api/v1/projects/{id}`), never the raw path. Read once
    // the router has run: actix then looks it up from the matched resource
    // instead of matching the path against every route again.
    let (status, route) = match &result {
        Ok(response) => (response.status(), response.request().match_pattern()),
        Err(error) => (
            error.as_response_error().status_code(),
            crate::route_table::route_template(&path).map(str::to_owned),
        ),
    };
    let route = route.unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", status.as_str().to_owned()),
    ];
    counter!(HTTP_REQUESTS_TOTAL, &labels).increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    result
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
