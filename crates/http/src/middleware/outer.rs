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
//! - every error response is completed as a problem (`problems`);
//! - the security headers, on every response (`security_headers`).
//!
//! They were five `from_fn` layers, each with a boxed future of its own, and
//! three of them asked actix for the matched route pattern (a lookup and a
//! `String` each time); here the pattern is read once, after routing.

use std::future::{Future as _, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderMap;
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};
use futures_util::FutureExt as _;

use crate::client_deadline::RequestDeadline;
use crate::client_ip::ClientIp;
use crate::middleware::problems;
use crate::middleware::request_metrics::RequestTimer;
use crate::middleware::security_headers::{self, RouteKind};
use crate::request_id::{RequestId, X_REQUEST_ID};
use crate::{ApiError, AppState};

pub async fn outer<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B, BoxBody>>, actix_web::Error> {
    let deadline = RequestDeadline::start(&req);
    let started = Instant::now();
    let timer = RequestTimer::start(&req);
    let id = RequestId::of(&req);
    req.extensions_mut().insert(id.clone());
    let state = req.app_data::<web::Data<AppState>>();
    // The one client address of this request, for the logs and the limits.
    let client = state.map(|state| ClientIp::of(&req, state.rate_limits.trusted_proxies()));
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
    // panic or an error leaves no request to read them from. The URI shares
    // the request's bytes (the path is not copied).
    let uri = req.uri().clone();
    let body_limit = problems::body_limit(state);
    let hsts_seconds = security_headers::hsts_seconds(state);

    // Every log line of the request is written in its span: entered around
    // each poll of the layers inside (what `Instrument` does, without a
    // second handle on the span, nor entering it again to drop a finished
    // future).
    let mut call = pin!(next.call(req));
    let outcome = AssertUnwindSafe(poll_fn(|cx| {
        let _entered = span.enter();
        call.as_mut().poll(cx)
    }))
    .catch_unwind()
    .await;
    let ending = Ending {
        span,
        started,
        timer,
        deadline,
        id,
        hsts_seconds,
    };
    let failure = match outcome {
        Ok(Ok(response)) => {
            // The pattern (`/api/v1/projects/{id}`), never the raw path. Read
            // once the router has run: actix then looks it up from the
            // matched resource instead of matching the path again.
            let route = response.request().match_pattern();
            let mut response = if problems::is_error(response.status()) {
                let _entered = ending.span.enter();
                problems::finalise(response, &ending.id, body_limit)
            } else {
                response.map_into_left_body()
            };
            let status = response.status();
            let kind = RouteKind::of(route.as_deref());
            ending.finish(
                response.headers_mut(),
                status,
                kind,
                route.as_deref(),
                route.as_deref(),
            );
            return Ok(response);
        }
        Ok(Err(error)) => error.error_response(),
        Err(_panic) => {
            // The panic message went to stderr through the panic hook; the
            // worker keeps serving and the client gets the generic 500.
            let _entered = ending.span.enter();
            ApiError::Internal("a request handler panicked".into()).error_response()
        }
    };
    let path = uri.path();
    let request_id = Some(ending.id.as_str().to_owned());
    let mut response = problems::complete(failure, path, request_id, body_limit);
    let status = response.status();
    // No route's response: an error, never cached; the metrics' route is
    // the documented path's template (no router answered to ask).
    let route = crate::route_table::route_template(path);
    ending.finish(response.headers_mut(), status, RouteKind::Api, None, route);
    Err(problems::Prepared::new(response).into())
}

/// What every response gets on its way out, a success or a failure alike.
struct Ending {
    span: tracing::Span,
    started: Instant,
    timer: Option<RequestTimer>,
    deadline: Option<RequestDeadline>,
    id: RequestId,
    hsts_seconds: u64,
}

impl Ending {
    /// The security headers for a route of `kind` and `X-Request-Id` onto
    /// the response; the access log line (`logged_route` onto the span,
    /// with the status and duration, in one record), the request metrics
    /// (by `metrics_route`), and the next request's head deadline.
    fn finish(
        self,
        headers: &mut HeaderMap,
        status: StatusCode,
        kind: RouteKind,
        logged_route: Option<&str>,
        metrics_route: Option<&str>,
    ) {
        security_headers::apply(headers, kind, self.hsts_seconds);
        headers.insert(X_REQUEST_ID, self.id.header_value());
        let elapsed = self.started.elapsed();
        finished(&self.span, logged_route, status, elapsed);
        if let Some(timer) = self.timer {
            timer.record(status, metrics_route, elapsed);
        }
        if let Some(deadline) = self.deadline {
            deadline.response_ready();
        }
    }
}

/// The access log line: the span's last fields recorded at once, and the
/// line written in the span (as its explicit parent: no entering it).
fn finished(span: &tracing::Span, route: Option<&str>, status: StatusCode, elapsed: Duration) {
    tracing::record_all!(
        span,
        http.route = route,
        http.status = status.as_u16(),
        duration_ms = elapsed.as_millis() as u64,
    );
    tracing::info!(parent: span, "request finished");
}
