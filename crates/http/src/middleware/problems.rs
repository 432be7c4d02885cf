//! The problem finaliser: every error response leaves as RFC 9457
//! `application/problem+json` with `request_id` and `instance`.
//!
//! Our own `ApiError`s put a `Problem` in the response extensions; the outer
//! layer (`outer`) completes it here. Anything else with an error status (actix's own
//! responses, a middleware's error, a panic in a handler) is replaced by
//! the problem for its status, so no plain-text body, stack trace or Rust
//! type name ever reaches a client.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::{self, Bytes};
use actix_web::{HttpResponse, ResponseError};

use crate::AppState;
use crate::error::{ApiError, PROBLEM_TYPE_BASE, Problem};
use crate::request_id::RequestId;

/// Completes an error response of the routes and the layers inside; a
/// success goes out with its body as it is (not boxed). Called by the outer
/// layer (`outer`) on every response it gets, as a layer of its own did
/// before: one boxed future and one call fewer per request. An `Err` (or a
/// panic) is completed there too, by `complete`, from what the outer layer
/// kept of the request.
pub(crate) fn finalise<B: MessageBody + 'static>(
    response: ServiceResponse<B>,
    request_id: &RequestId,
    body_limit: usize,
) -> ServiceResponse<EitherBody<B, BoxBody>> {
    if !is_error(response.status()) {
        return response.map_into_left_body();
    }
    let (request, mut response) = response.map_into_boxed_body().into_parts();
    // actix's own 405 (a resource whose routes lack the method) names no
    // methods; RFC 9110 requires `Allow`.
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(header::ALLOW)
        && let Some(allow) = crate::route_table::allowed_methods(request.path())
        && let Ok(value) = HeaderValue::from_str(&allow.join(", "))
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    let response = complete(
        response,
        request.path(),
        Some(request_id.as_str().to_owned()),
        body_limit,
    );
    ServiceResponse::new(request, response).map_into_right_body()
}

pub(crate) fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

pub(crate) fn body_limit(state: Option<&web::Data<AppState>>) -> usize {
    state.map_or(16 * 1024, |state| state.config.body_limit)
}

/// The error response as problem+json: our own `Problem` when there is
/// one, else the problem for its status; with `instance` and `request_id`.
pub(crate) fn complete(
    mut response: HttpResponse<BoxBody>,
    path: &str,
    request_id: Option<String>,
    body_limit: usize,
) -> HttpResponse<BoxBody> {
    let status = response.status();
    let problem = response.extensions_mut().remove::<Problem>();
    let mut problem = match problem {
        Some(problem) => problem,
        None => {
            if let Some(error) = response.error() {
                // actix's own errors: their text may name types, so it goes
                // to the log only.
                tracing::debug!(error = %error, status = status.as_u16(), "replaced an error body");
            }
            problem_for_status(status, body_limit)
        }
    };
    problem.instance = Some(path.to_owned());
    problem.request_id = request_id;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(Problem::CONTENT_TYPE),
    );
    if matches!(
        status,
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS
    ) && !headers.contains_key(header::RETRY_AFTER)
    {
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    let body = problem.to_response_body();
    let mut response = response.set_body(BoxBody::new(body));
    response.extensions_mut().insert(problem);
    response
}

/// A finished response carried as an error, for when a layer failed or a
/// handler panicked and no request is left to build a `ServiceResponse`
/// from: actix renders it through `error_response`.
#[derive(Debug)]
pub(crate) struct Prepared {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Prepared {
    pub(crate) fn new(response: HttpResponse<BoxBody>) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        Self {
            status,
            headers,
            body,
        }
    }
}

impl std::fmt::Display for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "request failed with {}", self.status)
    }
}

impl ResponseError for Prepared {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status).body(self.body.clone());
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// The problem for an error response that did not come from an `ApiError`.
fn problem_for_status(status: StatusCode, body_limit: usize) -> Problem {
    let error = match status {
        StatusCode::BAD_REQUEST => ApiError::BadRequest("the request is malformed".into()),
        StatusCode::UNAUTHORIZED => ApiError::InvalidToken("authentication is required"),
        StatusCode::FORBIDDEN => ApiError::Forbidden,
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed { allow: Vec::new() },
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge { limit: body_limit },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited {
            retry_after: std::time::Duration::from_secs(1),
        },
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable("the service is unavailable"),
        StatusCode::INTERNAL_SERVER_ERROR => {
            ApiError::Internal("an error response without a problem".into())
        }
        status => {
            let title = status.canonical_reason().unwrap_or("Error");
            return Problem {
                type_: format!("{PROBLEM_TYPE_BASE}http-{}", status.as_u16()),
                title,
                status: status.as_u16(),
                detail: title.to_owned(),
                instance: None,
                request_id: None,
                errors: None,
            };
        }
    };
    Problem::from(&error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_gets_a_problem() {
        for code in 400..600u16 {
            let Ok(status) = StatusCode::from_u16(code) else {
                continue;
            };
            let problem = problem_for_status(status, 100);
            assert_eq!(problem.status, code);
            assert!(problem.type_.starts_with(PROBLEM_TYPE_BASE));
            assert!(!problem.title.is_empty());
        }
    }
}
