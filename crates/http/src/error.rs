//! The one mapping from errors to RFC 9457 problem responses. Every error a
//! client can see is an `ApiError`; the `match` in `ApiError::kind` (status,
//! problem slug, title) reads against the contract's status table, and the
//! lower layers' errors arrive through the `From`s below.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use projects_auth::AuthError;
use projects_domain::DomainError;
use projects_store::{ConsumeError, StoreError, UserChangeError};
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
///
/// Its status, problem `type` slug and title come from one table,
/// [`ApiError::kind`]; `docs/errors.md` is that table for clients (a test
/// keeps them equal). Errors of the lower layers arrive through `From`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed JSON, a bad query parameter or cursor, a path id that is
    /// not a UUID.
    #[error("{0}")]
    BadRequest(String),
    /// A missing, malformed, expired or forged access token.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// Wrong e-mail or password, or an unusable refresh token.
    #[error("{0}")]
    InvalidCredentials(&'static str),
    /// An account token (password reset, email verification or change)
    /// that is unknown, used, expired or tampered with.
    #[error("the link's token is invalid, used or expired: ask for a new link")]
    InvalidAccountToken,
    /// The caller's role does not allow the action.
    #[error("your role does not allow this action")]
    Forbidden,
    /// `REQUIRE_VERIFIED_EMAIL`: the password was right, the address is
    /// not verified yet.
    #[error("confirm your e-mail address first: use the link we mailed you, or ask for a new one")]
    EmailNotVerified,
    /// No such resource, or one the caller may not see.
    #[error("the resource does not exist")]
    NotFound,
    /// The path does not have this method; `allow` lists those it has.
    #[error("this method is not allowed on this resource")]
    MethodNotAllowed { allow: Vec<&'static str> },
    /// A taken e-mail address, the last admin, …
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` does not match the current version.
    #[error("the resource has changed since you read it: fetch it again")]
    PreconditionFailed,
    /// The body is over the size limit.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body is not JSON.
    #[error("the request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    /// Every violated rule of the input.
    #[error("the request has invalid fields: see `errors`")]
    Validation(Vec<FieldError>),
    /// Over a rate limit or the password-check throttle.
    #[error("too many requests: retry after {} seconds", ceil_secs(*retry_after).max(1))]
    RateLimited { retry_after: Duration },
    /// The database, or the password pool, cannot take the request now.
    #[error("{0}; retry later")]
    Unavailable(&'static str),
    /// Anything else; the cause goes to the log only.
    #[error("an unexpected error occurred")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// One row of the error table: what a client receives for an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind {
    pub status: StatusCode,
    /// The last segment of the problem's `type` (after [`PROBLEM_TYPE_BASE`]).
    pub slug: &'static str,
    /// The problem's `title`.
    pub title: &'static str,
    /// When a client gets it, in the clients' words (`docs/errors.md`).
    pub when: &'static str,
}

/// Whole seconds, rounded up (for `Retry-After` and `RateLimit-Reset`).
pub(crate) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

impl ApiError {
    /// The 400 for an id in the path that is not a UUID (every path
    /// parameter is one).
    pub fn path_id_not_uuid() -> Self {
        Self::BadRequest("the id in the path is not a UUID".into())
    }

    /// The error table: the status, problem slug and title of every
    /// error, in one `match` that reads against the contract's status table.
    pub const fn kind(&self) -> ErrorKind {
        const fn row(
            status: StatusCode,
            slug: &'static str,
            title: &'static str,
            when: &'static str,
        ) -> ErrorKind {
            ErrorKind {
                status,
                slug,
                title,
                when,
            }
        }
        use StatusCode as S;
        match self {
            ApiError::BadRequest(_) => row(
                S::BAD_REQUEST,
                "bad-request",
                "Bad request",
                "Malformed JSON, a bad query parameter or cursor, a path id that is not a UUID",
            ),
            ApiError::InvalidAccountToken => row(
                S::BAD_REQUEST,
                "invalid-token",
                "Bad request",
                "A link's token (password reset, email verification or change) is unknown, \
                 used, expired or tampered with; nothing changed",
            ),
            ApiError::InvalidToken(_) => row(
                S::UNAUTHORIZED,
                "invalid-token",
                "Unauthorized",
                "The access token is missing, malformed, expired, forged, of an ended session \
                 or of a deleted user; with `WWW-Authenticate: Bearer`",
            ),
            ApiError::InvalidCredentials(_) => row(
                S::UNAUTHORIZED,
                "invalid-credentials",
                "Unauthorized",
                "Wrong e-mail or password, or an unusable refresh token",
            ),
            ApiError::Forbidden => row(
                S::FORBIDDEN,
                "forbidden",
                "Forbidden",
                "Authenticated, but the role does not allow the action",
            ),
            ApiError::EmailNotVerified => row(
                S::FORBIDDEN,
                "email-not-verified",
                "Forbidden",
                "Login with the right password, but the address is not verified yet (only \
                 when the server requires verified addresses)",
            ),
            ApiError::NotFound => row(
                S::NOT_FOUND,
                "not-found",
                "Not found",
                "No such resource, or one the caller may not see",
            ),
            ApiError::MethodNotAllowed { .. } => row(
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "The path does not have this method; `Allow` lists those it has",
            ),
            ApiError::Conflict(_) => row(
                S::CONFLICT,
                "conflict",
                "Conflict",
                "The request conflicts with the current state: a taken e-mail address, the \
                 last admin",
            ),
            ApiError::PreconditionFailed => row(
                S::PRECONDITION_FAILED,
                "precondition-failed",
                "Precondition failed",
                "`If-Match` does not match the current version",
            ),
            ApiError::PayloadTooLarge { .. } => row(
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "The body is over the size limit (16 KiB by default)",
            ),
            ApiError::UnsupportedMediaType => row(
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "The body is not JSON",
            ),
            ApiError::Validation(_) => row(
                S::UNPROCESSABLE_ENTITY,
                "validation",
                "Validation failed",
                "The input breaks a rule; `errors` lists every violation (`field`, `code`, \
                 `message`)",
            ),
            ApiError::RateLimited { .. } => row(
                S::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                "Rate limited, or too many password checks for one account; `Retry-After` \
                 says when to retry",
            ),
            ApiError::Unavailable(_) => row(
                S::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
                "The database is unreachable or its pool timed out, or the password pool is \
                 full; `Retry-After`",
            ),
            ApiError::Internal(_) => row(
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
                "Anything else: a generic body, never a stack trace, SQL or internal message",
            ),
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
        let kind = error.kind();
        Problem {
            type_: format!("{PROBLEM_TYPE_BASE}{}", kind.slug),
            title: kind.title,
            status: kind.status.as_u16(),
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
        self.kind().status
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

/// A store error of a lookup of the caller's own account: its `NotFound`
/// means that the user of the access token was deleted since the token was
/// issued (401), not a missing resource (404).
#[derive(Debug)]
pub(crate) struct CallerLookup(pub StoreError);

impl From<CallerLookup> for ApiError {
    fn from(CallerLookup(error): CallerLookup) -> Self {
        match error {
            StoreError::NotFound => {
                ApiError::InvalidToken("the user of this access token no longer exists")
            }
            error => error.into(),
        }
    }
}

impl From<UserChangeError> for ApiError {
    fn from(error: UserChangeError) -> Self {
        match error {
            UserChangeError::Domain(error) => error.into(),
            UserChangeError::Store(error) => error.into(),
        }
    }
}

/// Consuming an account token: an unusable token is 400 `invalid-token`;
/// a conflict is the new address of an email change, taken meanwhile.
impl From<ConsumeError> for ApiError {
    fn from(error: ConsumeError) -> Self {
        match error {
            ConsumeError::Invalid(_) => ApiError::InvalidAccountToken,
            ConsumeError::Store(StoreError::Conflict { .. }) => {
                ApiError::Conflict("an account with this e-mail address already exists".into())
            }
            ConsumeError::Store(error) => error.into(),
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

    /// One error of every variant.
    fn every_error() -> Vec<ApiError> {
        vec![
            ApiError::BadRequest("a query parameter is invalid".into()),
            ApiError::InvalidAccountToken,
            ApiError::InvalidToken("the access token has expired"),
            ApiError::InvalidCredentials("the e-mail address or the password is incorrect"),
            ApiError::Forbidden,
            ApiError::EmailNotVerified,
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: vec!["GET"] },
            ApiError::Conflict("taken".into()),
            ApiError::PreconditionFailed,
            ApiError::PayloadTooLarge { limit: 16384 },
            ApiError::UnsupportedMediaType,
            ApiError::Validation(Vec::new()),
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            ApiError::Unavailable("the database is unavailable"),
            ApiError::Internal("example".into()),
        ]
    }

    /// Each variant's number; does not compile when a variant is added
    /// without its line here (and then in `every_error`).
    fn variant(error: &ApiError) -> usize {
        match error {
            ApiError::BadRequest(_) => 0,
            ApiError::InvalidAccountToken => 1,
            ApiError::InvalidToken(_) => 2,
            ApiError::InvalidCredentials(_) => 3,
            ApiError::Forbidden => 4,
            ApiError::EmailNotVerified => 5,
            ApiError::NotFound => 6,
            ApiError::MethodNotAllowed { .. } => 7,
            ApiError::Conflict(_) => 8,
            ApiError::PreconditionFailed => 9,
            ApiError::PayloadTooLarge { .. } => 10,
            ApiError::UnsupportedMediaType => 11,
            ApiError::Validation(_) => 12,
            ApiError::RateLimited { .. } => 13,
            ApiError::Unavailable(_) => 14,
            ApiError::Internal(_) => 15,
        }
    }

    #[test]
    fn the_examples_hold_every_variant_once() {
        let mut seen: Vec<usize> = every_error().iter().map(variant).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn each_response_is_its_row_of_the_table() {
        for error in every_error() {
            let kind = error.kind();
            let body = body_of(&error);
            assert_eq!(error.status_code(), kind.status, "{error:?}");
            assert_eq!(body["status"], kind.status.as_u16(), "{error:?}");
            assert_eq!(body["type"], format!("{PROBLEM_TYPE_BASE}{}", kind.slug));
            assert_eq!(body["title"], kind.title, "{error:?}");
        }
    }

    /// `docs/errors.md`: the error table for clients.
    fn errors_markdown() -> String {
        let mut errors = every_error();
        errors.sort_by_key(|error| error.kind().status.as_u16());
        let mut doc = String::from(
            "# Errors\n\n\
             <!-- Generated from the error table in crates/http/src/error.rs\n     \
             (`ApiError::kind`); a test keeps this file equal to it. Rewrite it with\n     \
             UPDATE_ERRORS_DOC=1 cargo test -p projects-http --lib error::tests -->\n\n\
             Every error is `application/problem+json` (RFC 9457): `type` is\n\
             `https://projects-api.dev/problems/` followed by the slug below (match on\n\
             it, not on `detail`), `title` is the row's title, `status` the HTTP status,\n\
             `detail` says what went wrong with this request, `instance` is the path and\n\
             `request_id` the request's `X-Request-Id` (quote it when reporting a\n\
             problem). A 422 adds `errors`, every violated rule as `field`, `code` and\n\
             `message`.\n\n\
             | status | type | title | when |\n\
             | --- | --- | --- | --- |\n",
        );
        for error in &errors {
            let kind = error.kind();
            let when = kind.when.split_whitespace().collect::<Vec<_>>().join(" ");
            doc.push_str(&format!(
                "| {} | `{}` | {} | {} |\n",
                kind.status.as_u16(),
                kind.slug,
                kind.title,
                when
            ));
        }
        doc
    }

    #[test]
    fn docs_errors_md_is_the_error_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
        let expected = errors_markdown();
        if std::env::var_os("UPDATE_ERRORS_DOC").is_some() {
            std::fs::write(&path, &expected).expect("docs/errors.md is writable");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/errors.md is not the error table of crates/http/src/error.rs; rewrite it with\n\
             UPDATE_ERRORS_DOC=1 cargo test -p projects-http --lib error::tests\n\n\
             The table is:\n{expected}"
        );
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
