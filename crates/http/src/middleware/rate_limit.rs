//! The middleware: count the request, refuse it with 429 when over a limit,
//! and tell the client where it stands in `RateLimit-*` headers.
//!
//! Whether the auth limit applies is decided on the route the request will
//! reach: the pattern of the route table that matches the path the router
//! itself matches (percent-escapes of unreserved characters decoded), so no
//! spelling of an auth route escapes it; a path that matches no route
//! reaches no handler.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};

use crate::client_ip::ClientIp;
use crate::error::ceil_secs;
use crate::rate_limit::{Scope, Standing};
use crate::{ApiError, AppState};

/// Every route under this prefix has the auth limit.
const AUTH_ROUTES: &str = "/api/v1/auth/";

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

pub async fn rate_limit<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limits = &state.rate_limits;
    // A route no limit counts (all of them while the limits are off) costs
    // no client address, count or headers.
    let scope = if limits.apply_to(Scope::Auth) && is_auth_route(&req) {
        Scope::Auth
    } else {
        Scope::General
    };
    if !limits.apply_to(scope) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let limits = Arc::clone(limits);
    let client = ClientIp::of(&req, limits.trusted_proxies()).0;
    // Boxed: its future (the store's round trip) would otherwise be part of
    // every request's future, limited or not, and that future is moved
    // whole into the box the outer layer's `Next` makes (a few KiB copied
    // per request, with the limits off too).
    let Some(standing) = Box::pin(limits.check(client, scope)).await else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if let Some(retry_after) = standing.retry_after {
        metrics::counter!("rate_limited_requests_total").increment(1);
        tracing::debug!(
            retry_after_ms = retry_after.as_millis() as u64,
            "rate limited"
        );
        let mut response = ApiError::RateLimited { retry_after }.error_response();
        write_headers(response.headers_mut(), &standing);
        return Ok(req.into_response(response).map_into_right_body());
    }
    let mut response = next.call(req).await?;
    write_headers(response.headers_mut(), &standing);
    Ok(response.map_into_left_body())
}

/// Whether the request will reach a route under [`AUTH_ROUTES`]. The path
/// the router matches is tested first, cheaply: every auth route's pattern
/// starts with the prefix, so a path without it cannot reach one.
fn is_auth_route(req: &ServiceRequest) -> bool {
    let routed = req.match_info().as_str();
    if !routed.starts_with(AUTH_ROUTES) {
        return false;
    }
    req.resource_map()
        .match_pattern(routed)
        .is_some_and(|pattern| pattern.starts_with(AUTH_ROUTES))
}

fn write_headers(headers: &mut HeaderMap, standing: &Standing) {
    headers.insert(LIMIT, HeaderValue::from(standing.limit));
    headers.insert(REMAINING, HeaderValue::from(standing.remaining));
    headers.insert(RESET, HeaderValue::from(ceil_secs(standing.reset)));
    if let Some(retry_after) = standing.retry_after {
        headers.insert(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from(ceil_secs(retry_after).max(1)),
        );
    }
}
