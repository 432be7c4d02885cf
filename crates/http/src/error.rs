//! The one mapping from errors to RFC 9457 problem responses. Every error a
//! client can see is an `ApiError`; the `match` in `status` reads against the
//! contract's status table.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use projects_auth::AuthError;
use projects_domain::DomainError;
use projects_store::StoreError;
use serde::Serialize;

/// Where the problem types are documented; forks should point this at their
/// own documentation.
pub const PROBLEM_TYPE_BASE: &str = "https://projects-api.dev/problems/";

/// One violated rule of one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as named in the request body or query (`body` for the
    /// body as a whole).
    #[schema(example = "name")]
    pub field: String,
    /// A stable, machine-readable code (`length`, `email`, `unknown_field`, …).
    #[schema(example = "length")]
    pub code: String,
    /// What is wrong, for people.
    #[schema(example = "must be 1 to 200 characters")]
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An error as the client sees it. `Display` is the problem's `detail` and
/// is always safe to show; causes go to the log, never to the client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A missing, malformed, expired or forged access token.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// Wrong e-mail or password, or an unusable refresh token.
    #[error("{0}")]
    InvalidCredentials(&'static str),
    #[error("your role does not allow this action")]
    Forbidden,
    #[error("the resource does not exist")]
    NotFound,
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed { allow: Vec<&'static str> },
    #[error("{0}")]
    Conflict(String),
    #[error("the resource has changed since you read it: fetch it again")]
    PreconditionFailed,
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("the request has invalid fields: see `errors`")]
    Validation(Vec<FieldError>),
    #[error("too many requests: retry after {} seconds", ceil_secs(*retry_after).max(1))]
    RateLimited { retry_after: Duration },
    #[error("{0}; retry later")]
    Unavailable(&'static str),
    #[error("an unexpected error occurred")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Whole seconds, rounded up (for `Retry-After` and `RateLimit-Reset`).
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

impl ApiError {
    /// The problem's `type` slug and `title`.
    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => ("bad-request", "Bad request"),
            ApiError::InvalidToken(_) => ("invalid-token", "Unauthorized"),
            ApiError::InvalidCredentials(_) => ("invalid-credentials", "Unauthorized"),
            ApiError::Forbidden => ("forbidden", "Forbidden"),
            ApiError::NotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            ApiError::Conflict(_) => ("conflict", "Conflict"),
            ApiError::PreconditionFailed => ("precondition-failed", "Precondition failed"),
            ApiError::PayloadTooLarge { .. } => ("payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            ApiError::Validation(_) => ("validation", "Validation failed"),
            ApiError::RateLimited { .. } => ("rate-limited", "Too many requests"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Internal(_) => ("internal", "Internal server error"),
        }
    }

    /// A validation failure of a single field.
    pub fn invalid_field(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::Validation(vec![FieldError::new(field, code, message)])
    }
}

/// The body of every error response (RFC 9457). `instance` and `request_id`
/// are filled in from the request by the error middleware.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(description = "An error, as RFC 9457 problem details (application/problem+json)")]
pub struct Problem {
    /// A URI naming the kind of problem; its last segment is a stable slug.
    #[serde(rename = "type")]
    #[schema(example = "https://projects-api.dev/problems/validation")]
    pub type_: String,
    /// A short summary of the kind of problem.
    #[schema(example = "Validation failed")]
    pub title: &'static str,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599, example = 422)]
    pub status: u16,
    /// What went wrong with this request, for people.
    #[schema(example = "the request has invalid fields: see `errors`")]
    pub detail: String,
    /// The path of the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/api/v1/projects")]
    pub instance: Option<String>,
    /// The request's `X-Request-Id`, to quote when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")]
    pub request_id: Option<String>,
    /// Every violated rule (validation failures only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    pub const CONTENT_TYPE: &'static str = "application/problem+json";

    pub fn to_response_body(&self) -> Vec<u8> {
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl From<&ApiError> for Problem {
    fn from(error: &ApiError) -> Self {
        let (slug, title) = error.kind();
        Problem {
            type_: format!("{PROBLEM_TYPE_BASE}{slug}"),
            title,
            status: error.status_code().as_u16(),
            detail: error.to_string(),
            instance: None,
            request_id: None,
            errors: match error {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidToken(_) | ApiError::InvalidCredentials(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(cause) = self {
            // Logged once, here, with the request's span; the client gets
            // the generic detail only.
            tracing::error!(error = ?cause, "request failed");
        }
        let problem = Problem::from(self);
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static(Problem::CONTENT_TYPE),
        ));
        match self {
            ApiError::InvalidToken(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="projects-api""#),
                ));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.join(", ")));
            }
            ApiError::RateLimited { retry_after } => {
                // Rounded up: a client that waits this long is let in.
                response.insert_header((header::RETRY_AFTER, ceil_secs(*retry_after).max(1)));
            }
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, 1));
            }
            _ => {}
        }
        let body = problem.to_response_body();
        let mut response = response.body(body);
        response.extensions_mut().insert(problem);
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Conflict { .. } => ApiError::Conflict("the resource already exists".into()),
            // The row that a new row points to is gone: as if it never was.
            StoreError::ForeignKey { .. } => ApiError::NotFound,
            StoreError::Check { constraint } => ApiError::invalid_field(
                constraint_field(constraint.as_deref()),
                "check",
                "the value is not allowed",
            ),
            StoreError::InvalidInput(_) => {
                ApiError::BadRequest("a value in the request has the wrong form".into())
            }
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = ?cause, "database unavailable");
                ApiError::Unavailable("the database is unavailable")
            }
            error @ (StoreError::Migration(_) | StoreError::Other(_)) => {
                ApiError::Internal(Box::new(error))
            }
        }
    }
}

/// The field a check constraint guards: PostgreSQL names them
/// `<table>_<column>_check`.
fn constraint_field(constraint: Option<&str>) -> String {
    constraint
        .and_then(|name| name.strip_suffix("_check"))
        .and_then(|name| name.split_once('_'))
        .map_or_else(|| "body".to_owned(), |(_, column)| column.to_owned())
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NotFound => ApiError::NotFound,
            DomainError::Forbidden => ApiError::Forbidden,
            DomainError::LastAdmin => ApiError::Conflict(error.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidToken(reason) => ApiError::InvalidToken(reason.message()),
            // Capacity, not the client's fault: 503 with Retry-After. A
            // password whose estimate timed out is refused, never stored.
            AuthError::Busy => ApiError::Unavailable("the server is busy checking passwords"),
            AuthError::TimedOut => {
                ApiError::Unavailable("the password's strength could not be checked in time")
            }
            error @ (AuthError::Hashing
            | AuthError::MalformedHash
            | AuthError::HasherClosed
            | AuthError::Signing) => ApiError::Internal(Box::new(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody as _;

    fn body_of(error: &ApiError) -> serde_json::Value {
        let response = error.error_response();
        let bytes = response
            .into_body()
            .try_into_bytes()
            .expect("a complete body");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[test]
    fn validation_problems_list_every_error() {
        let error = ApiError::Validation(vec![
            FieldError::new("name", "length", "too long"),
            FieldError::new("email", "email", "not an address"),
        ]);
        assert_eq!(error.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = body_of(&error);
        assert_eq!(body["type"], format!("{PROBLEM_TYPE_BASE}validation"));
        assert_eq!(body["title"], "Validation failed");
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let error = ApiError::Internal("SELECT secret FROM pg_shadow".into());
        let body = body_of(&error);
        assert_eq!(body["status"], 500);
        assert!(!body.to_string().contains("pg_shadow"));
    }

    #[test]
    fn token_errors_ask_for_a_bearer_token() {
        let response = ApiError::InvalidToken("the access token has expired").error_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenge = response.headers().get(header::WWW_AUTHENTICATE);
        assert!(challenge.is_some_and(|v| v.as_bytes().starts_with(b"Bearer")));
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(Problem::CONTENT_TYPE.as_bytes())
        );
    }

    #[test]
    fn store_errors_map_to_the_contract_statuses() {
        let cases = [
            (StoreError::NotFound, 404),
            (StoreError::Conflict { constraint: None }, 409),
            (StoreError::ForeignKey { constraint: None }, 404),
            (
                StoreError::Check {
                    constraint: Some("projects_status_check".into()),
                },
                422,
            ),
            (StoreError::Unavailable("gone".into()), 503),
            (StoreError::Other("bug".into()), 500),
        ];
        for (store_error, status) in cases {
            let api_error = ApiError::from(store_error);
            assert_eq!(api_error.status_code().as_u16(), status, "{api_error:?}");
        }
    }

    #[test]
    fn check_violations_name_their_column() {
        assert_eq!(constraint_field(Some("projects_status_check")), "status");
        assert_eq!(
            constraint_field(Some("users_password_hash_check")),
            "password_hash"
        );
        assert_eq!(constraint_field(None), "body");
    }
}
