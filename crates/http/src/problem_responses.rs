//! The error responses that many operations share, for the OpenAPI
//! document: each a `Problem` whose example is what the server really sends
//! (rendered from `ApiError` itself), and the families of them that whole
//! groups of routes answer. A resource module names them in its
//! annotations (`(status = 404, response = NotFound)`, `ServerErrors`); the
//! document registers them once in `components(responses(...))`.

use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};

use crate::error::{ApiError, FieldError, Problem};

/// One shared error response: a `Problem` whose example is what the server
/// really sends for that error (rendered from `ApiError` itself), with the
/// headers that status carries.
fn problem_response(
    description: &str,
    example: &ApiError,
    headers: &[(&str, &str, Type)],
) -> RefOr<Response> {
    let mut problem = Problem::from(example);
    problem.instance = Some("/api/v1/projects".into());
    problem.request_id = Some("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into());
    let mut response = ResponseBuilder::new().description(description).content(
        Problem::CONTENT_TYPE,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .example(Some(json!(problem)))
            .build(),
    );
    for (name, header_description, schema_type) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(schema_type.clone()))
                .description(Some(*header_description))
                .build(),
        );
    }
    response.build().into()
}

/// Declares a reusable error response (`response = NotFound` in a path's
/// `responses`), registered in the document's `components(responses(...))`.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident: $description:literal, $example:expr, [$($header:expr),* $(,)?];)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $name;

            impl<'r> utoipa::ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), problem_response($description, &$example, &[$($header),*]))
                }
            }
        )*
    };
}

const RETRY_AFTER: (&str, &str, Type) = (
    "Retry-After",
    "Seconds to wait before retrying",
    Type::Integer,
);

problem_responses! {
    /// 400.
    BadRequest: "Malformed JSON, a bad query parameter or cursor, or a path id that is not a UUID",
        ApiError::BadRequest("the request body is not valid JSON: expected value at line 1 column 1".into()), [];
    /// 401, with a `WWW-Authenticate: Bearer` challenge on token errors.
    Unauthorized: "A missing, malformed, expired or forged access token, or wrong credentials",
        ApiError::InvalidToken("the access token has expired"),
        [("WWW-Authenticate", "`Bearer` challenge, on token errors", Type::String)];
    /// 403.
    Forbidden: "Authenticated, but the role does not allow the action", ApiError::Forbidden, [];
    /// 403 on login when `REQUIRE_VERIFIED_EMAIL` is on.
    EmailNotVerified: "The password is right, but the address is not verified yet \
        (only when the server requires verified addresses)", ApiError::EmailNotVerified, [];
    /// 400 for an account token (it replaces `BadRequest` on the routes
    /// that take one, so it names malformed JSON too).
    InvalidAccountToken: "The link's token is unknown, used, expired or tampered with; \
        nothing changed. Also malformed JSON", ApiError::InvalidAccountToken, [];
    /// 404.
    NotFound: "No such resource, or one the caller may not see", ApiError::NotFound, [];
    /// 405.
    MethodNotAllowed: "The path does not have this method",
        ApiError::MethodNotAllowed { allow: vec!["GET", "PATCH", "DELETE"] },
        [("Allow", "The methods the path has", Type::String)];
    /// 409.
    Conflict: "The request conflicts with the current state (a taken e-mail, the last admin)",
        ApiError::Conflict("the e-mail address is already registered".into()), [];
    /// 412.
    PreconditionFailed: "`If-Match` does not match the current version", ApiError::PreconditionFailed, [];
    /// 413.
    PayloadTooLarge: "The body is over the size limit", ApiError::PayloadTooLarge { limit: 16384 }, [];
    /// 415.
    UnsupportedMediaType: "The body is not JSON", ApiError::UnsupportedMediaType, [];
    /// 422.
    ValidationFailed: "Validation failed; `errors` lists every violation",
        ApiError::Validation(vec![
            FieldError::new("name", "length", "must be 1 to 200 characters"),
            FieldError::new("colour", "unknown_field", "unknown field"),
        ]), [];
    /// 429.
    TooManyRequests: "Rate limited",
        ApiError::RateLimited { retry_after: std::time::Duration::from_secs(3) },
        [
            RETRY_AFTER,
            ("RateLimit-Limit", "Requests allowed in the window", Type::Integer),
            ("RateLimit-Remaining", "Requests left in the window", Type::Integer),
            ("RateLimit-Reset", "Seconds until the window resets", Type::Integer),
        ];
    /// 429 on the routes that check a password: the client's limit, or the
    /// account's throttle of password checks.
    TooManyPasswordChecks: "Rate limited: too many requests from this client, or too many \
        password checks for this account (whatever the client's address; the wait grows \
        with each check, up to 15 minutes, and a right password clears it)",
        ApiError::RateLimited { retry_after: std::time::Duration::from_secs(5) },
        [RETRY_AFTER];
    /// 503.
    ServiceUnavailable: "The server cannot take this request now: the database is unreachable or its pool timed out, or (routes that check or hash passwords) the password pool's queue is full or a strength estimate missed its deadline. Never a pass of an unchecked password",
        ApiError::Unavailable("the database is unavailable"), [RETRY_AFTER];
    /// 500.
    InternalError: "An unexpected error; the body never holds internal details",
        ApiError::Internal("example".into()), [];
}

/// Shared responses that whole families of routes answer, so that each
/// route's annotation names its families and lists only its own responses.
/// Each entry is a reference to the shared response above, as a
/// `(status = …, response = …)` tuple would write it.
macro_rules! response_families {
    ($($(#[$doc:meta])* $family:ident { $($status:literal: $response:ident),+ $(,)? })*) => {
        $(
            $(#[$doc])*
            #[derive(Debug)]
            pub struct $family;

            impl utoipa::IntoResponses for $family {
                fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
                    std::collections::BTreeMap::from([$((
                        $status.to_owned(),
                        RefOr::Ref(Ref::from_response_name(
                            <$response as utoipa::ToResponse>::response().0,
                        )),
                    )),+])
                }
            }
        )*
    };
}

response_families! {
    /// What any API route may answer whatever it does: 429, 500, 503.
    ServerErrors { "429": TooManyRequests, "500": InternalError, "503": ServiceUnavailable }
    /// What a route that reads a JSON body may answer about the body: 400,
    /// 413, 415, 422.
    JsonBodyErrors {
        "400": BadRequest,
        "413": PayloadTooLarge,
        "415": UnsupportedMediaType,
        "422": ValidationFailed,
    }
}
