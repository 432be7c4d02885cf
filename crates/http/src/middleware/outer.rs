//! The outermost layer, as one middleware: what every request pays once.
//!
//! In the order a request meets them:
//! - the connection's client deadline follows the request (see
//!   `client_deadline`);
//! - the request is counted and timed (`request_metrics`), every response
//!   included, 429s and panics too;
//! - `X-Request-Id`: the client's id when it is sane, else a new UUID. The
//!   id goes into the request's extensions (for problem bodies), onto the
//!   response, and onto a tracing span that every log line of the request
//!   is written inside, so the logs of one request can be found by its id;
//!   the span ends with the access log line (`request finished`);
//! - the security headers, on every response (`security_headers`).
//!
//! They were four `from_fn` layers, each with a boxed future of its own, and
//! three of them asked actix for the matched route pattern (a lookup and a
//! `String` each time); here the pattern is read once, after routing.

use std::panic::AssertUnwindSafe;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};
use futures_util::FutureExt as _;
use tracing::Instrument as _;

use crate::client_deadline::RequestDeadline;
use crate::client_ip::ClientIp;
use crate::middleware::problems;
use crate::middleware::request_metrics::RequestTimer;
use crate::middleware::security_headers::{self, RouteKind};
use crate::request_id::{RequestId, X_REQUEST_ID, sane};
use crate::{ApiError, AppState};

pub async fn outer(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let deadline = RequestDeadline::start(&req);
    let started = Instant::now();
    let timer = RequestTimer::start(&req, started);
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(sane)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let id_header = HeaderValue::from_str(&id).ok();
    req.extensions_mut().insert(RequestId(id.clone()));
    let state = req.app_data::<web::Data<AppState>>();
    // The one client address of this request, for the logs and the limits.
    let client = state.map(|state| ClientIp::of(&req, state.rate_limits.trusted_proxies()).0);
    let span = tracing::info_span!(
        "request",
        request_id = id.as_str(),
        client.ip = client.map(tracing::field::display),
        http.method = req.method().as_str(),
        http.route = tracing::field::Empty,
        http.status = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    // What a failure response needs, kept before the request moves on: a
    // panic or an error leaves no request to read them from.
    let path = req.path().to_owned();
    let (body_limit, hsts) = (
        problems::body_limit(state),
        security_headers::hsts_seconds(state),
    );

    let outcome = AssertUnwindSafe(next.call(req).instrument(span.clone()))
        .catch_unwind()
        .await;
    let failure = match outcome {
        Ok(Ok(mut response)) => {
            // The pattern (`/api/v1/projects/{id}`), never the raw path. Read
            // once the router has run: actix then looks it up from the
            // matched resource instead of matching the path again.
            let route = response.request().match_pattern();
            let headers = response.headers_mut();
            security_headers::apply(headers, RouteKind::of(route.as_deref()), hsts);
            if let Some(value) = id_header {
                headers.insert(X_REQUEST_ID, value);
            }
            if let Some(route) = &route {
                span.record("http.route", route.as_str());
            }
            let status = response.status();
            finished(&span, status, started);
            if let Some(timer) = timer {
                timer.record(status, route);
            }
            if let Some(deadline) = deadline {
                deadline.response_ready();
            }
            return Ok(response);
        }
        Ok(Err(error)) => error.error_response(),
        Err(_panic) => {
            // The panic message went to stderr through the panic hook; the
            // worker keeps serving and the client gets the generic 500.
            let _entered = span.enter();
            ApiError::Internal("a request handler panicked".into()).error_response()
        }
    };
    let mut response = problems::complete(failure, &path, Some(id), body_limit);
    // No route's response: an error, never cached.
    security_headers::apply(response.headers_mut(), RouteKind::Api, hsts);
    if let Some(value) = id_header {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    let status = response.status();
    finished(&span, status, started);
    if let Some(timer) = timer {
        timer.record(
            status,
            crate::route_table::route_template(&path).map(str::to_owned),
        );
    }
    if let Some(deadline) = deadline {
        deadline.response_ready();
    }
    Err(problems::Prepared::new(response).into())
}

fn finished(span: &tracing::Span, status: StatusCode, started: Instant) {
    span.record("http.status", status.as_u16());
    span.record("duration_ms", started.elapsed().as_millis() as u64);
    span.in_scope(|| tracing::info!("request finished"));
}
