//! The middleware: count the request, refuse it with 429 when over a limit,
//! and tell the client where it stands in `RateLimit-*` headers.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};

use super::Standing;
use crate::client_ip::client_ip;
use crate::{ApiError, AppState};

const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

pub async fn rate_limit<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let limits = &state.rate_limits;
    let client = client_ip(&req, limits.trust_forwarded_for());
    let auth_route = req.path().starts_with("/api/v1/auth/");
    let Some(standing) = limits.check(client, auth_route).await else {
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

fn ceil_secs(duration: std::time::Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
