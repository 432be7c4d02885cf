//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the types' `ToSchema` derives, and the pages that serve
//! it: `GET /openapi.json` and the interactive docs at `/docs`.
//!
//! Documenting a handler: annotate it with `#[utoipa::path(...)]` (tag, the
//! full path including `/api/v1`, parameters, request body, every response),
//! list it in `paths(...)` below, and refer to the shared error responses
//! here (`(status = 404, response = NotFound)`) so that every error is
//! documented once, as `application/problem+json`. Operations need the
//! bearer token unless they say `security(())`.
//!
//! The docs page is Swagger UI from the binary's own embedded assets:
//! nothing loads from another host, and `DOCS_CSP` allows only what the page
//! needs.

use std::sync::{Arc, LazyLock};

use actix_web::{HttpResponse, web};
use serde_json::json;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi as _};

use crate::error::{ApiError, FieldError, Problem};
use crate::{accounts, auth, health, projects, sessions, users};
use projects_domain::inputs::{
    Login, NewProject, PasswordResetConfirm, PasswordResetRequest, ProjectPatch, RefreshRequest,
    Registration, TokenConfirm, UserPatch, UserSelfPatch,
};
use projects_domain::{Project, ProjectSort, ProjectStatus, Role, User};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// Where the interactive docs are served.
pub const DOCS_PATH: &str = "/docs";
/// The name of the bearer-token security scheme.
pub const BEARER_AUTH: &str = "bearer_auth";

/// The Content-Security-Policy of `/docs`: Swagger UI's own scripts and
/// styles from this origin (our index page has no inline script), the one
/// `<style>` element Swagger UI 5.17.14 injects (allowed by its hash, not by
/// `'unsafe-inline'`; the browser test fails if an upgrade changes it), the
/// `data:` SVG icons of its stylesheet, and requests to this origin only
/// ("Try it out"). Everything else, including framing, stays forbidden.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The whole API, as clients see it.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(
    info(
        title = "projects-api",
        description = "A REST API for users and their projects.\n\n\
            Bodies are JSON; timestamps are RFC 3339 in UTC; ids are UUIDs (v7). \
            Every error is `application/problem+json` (RFC 9457). \
            Authenticate with `Authorization: Bearer <access token>` from \
            `POST /api/v1/auth/register` or `POST /api/v1/auth/login`.",
        contact(name = "projects-api", url = "https://projects-api.dev/"),
        // OpenAPI 3.1 allows a license's `url` or its `identifier`, not both.
        license(name = "MIT OR Apache-2.0", url = "https://projects-api.dev/license"),
    ),
    servers((url = "/", description = "The server that serves this document")),
    paths(
        auth::register,
        auth::login,
        auth::refresh,
        auth::logout,
        accounts::request_password_reset,
        accounts::confirm_password_reset,
        accounts::verify_email,
        accounts::resend_verification,
        accounts::confirm_email_change,
        sessions::list,
        sessions::end_one,
        sessions::end_many,
        users::me,
        users::update_me,
        users::list,
        users::get_one,
        users::update,
        users::remove,
        projects::create,
        projects::list,
        projects::get_one,
        projects::update,
        projects::remove,
        health::live,
        health::ready,
        openapi_document,
        docs_page,
    ),
    components(
        schemas(
            Problem,
            FieldError,
            User,
            Project,
            Role,
            ProjectStatus,
            ProjectSort,
            Registration,
            Login,
            RefreshRequest,
            PasswordResetRequest,
            PasswordResetConfirm,
            TokenConfirm,
            accounts::Accepted,
            UserSelfPatch,
            UserPatch,
            NewProject,
            ProjectPatch,
            auth::Tokens,
            auth::Session,
            auth::Refreshed,
            sessions::SessionInfo,
        ),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            EmailNotVerified,
            InvalidAccountToken,
            NotFound,
            MethodNotAllowed,
            Conflict,
            PreconditionFailed,
            PayloadTooLarge,
            UnsupportedMediaType,
            ValidationFailed,
            TooManyRequests,
            TooManyPasswordChecks,
            ServiceUnavailable,
            InternalError,
        ),
    ),
    modifiers(&BearerAuth, &PublicOperations, &ResourceLinks, &ClosedInputs, &PageItemRefs),
    tags(
        (name = "auth", description = "Register, log in, refresh and revoke tokens"),
        (name = "sessions", description = "Your sessions (one per login): list them, end one or all"),
        (name = "users", description = "Your account, and user administration"),
        (name = "projects", description = "Projects: create, list, read, update, delete"),
        (name = "health", description = "Liveness and readiness probes"),
        (name = "docs", description = "This document and the interactive docs"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer scheme and makes it the default requirement, so that
/// an operation is documented as authenticated unless it opts out.
#[derive(Debug)]
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER_AUTH,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from register, login or refresh; it expires \
                         after `expires_in` seconds.",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            BEARER_AUTH,
            Vec::<String>::new(),
        )]);
    }
}

/// Writes the public operations' `security(())` as `security: []` (no
/// requirement) rather than utoipa's `[{}]` (one empty requirement), which
/// some client generators read as "authenticated".
#[derive(Debug)]
struct PublicOperations;

impl Modify for PublicOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let public = vec![SecurityRequirement::default()];
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if operation.security.as_ref() == Some(&public) {
                    operation.security = Some(Vec::new());
                }
            }
        }
    }
}

/// Makes each page schema (`Page_Project`) refer to its item schema
/// (`Project`) instead of a copy of it, which utoipa 5 inlines for a generic
/// type's parameter: generators then make one item type, not two.
#[derive(Debug)]
struct PageItemRefs;

impl Modify for PageItemRefs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::{ArrayItems, Schema};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let names: Vec<String> = components.schemas.keys().cloned().collect();
        for name in names {
            let Some(item) = name.strip_prefix("Page_") else {
                continue;
            };
            if !components.schemas.contains_key(item) {
                continue;
            }
            let Some(RefOr::T(Schema::Object(page))) = components.schemas.get_mut(&name) else {
                continue;
            };
            if let Some(RefOr::T(Schema::Array(data))) = page.properties.get_mut("data") {
                data.items = ArrayItems::RefOrSchema(Box::new(Ref::from_schema_name(item).into()));
            }
        }
    }
}

/// The request bodies, whose unknown fields the server rejects (422,
/// `unknown_field`): documented with `additionalProperties: false`.
const CLOSED_INPUTS: &[&str] = &[
    "Registration",
    "Login",
    "RefreshRequest",
    "UserSelfPatch",
    "UserPatch",
    "NewProject",
    "ProjectPatch",
    "PasswordResetRequest",
    "PasswordResetConfirm",
    "TokenConfirm",
];

/// Marks `CLOSED_INPUTS` closed (utoipa derives that only from serde's
/// `deny_unknown_fields`, which would stop at the first unknown field
/// instead of reporting them all).
#[derive(Debug)]
struct ClosedInputs;

impl Modify for ClosedInputs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        for name in CLOSED_INPUTS {
            if let Some(RefOr::T(utoipa::openapi::schema::Schema::Object(object))) =
                components.schemas.get_mut(*name)
            {
                object.additional_properties = Some(Box::new(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ));
            }
        }
    }
}

/// An OpenAPI link: after `from` answers `status`, `to` can be called with
/// `parameter` taken from the response (a runtime expression). Clients and
/// schemathesis' stateful phase follow them: create → get → patch → delete.
#[derive(Debug, Clone, Copy)]
struct LinkSpec {
    from: (&'static str, &'static str),
    status: &'static str,
    name: &'static str,
    to: (&'static str, &'static str),
    parameter: (&'static str, &'static str),
}

const fn link(
    from: (&'static str, &'static str),
    status: &'static str,
    name: &'static str,
    to: (&'static str, &'static str),
    parameter: (&'static str, &'static str),
) -> LinkSpec {
    LinkSpec {
        from,
        status,
        name,
        to,
        parameter,
    }
}

const PROJECT: &str = "/api/v1/projects/{id}";
const USER: &str = "/api/v1/users/{id}";
const PROJECT_ID: (&str, &str) = ("id", "$response.body#/id");
const REGISTERED_USER_ID: (&str, &str) = ("id", "$response.body#/user/id");

/// The links of the API. One whose operations are not (yet) documented is
/// left out, so the table can name every route of the contract.
const LINKS: &[LinkSpec] = &[
    link(
        ("post", "/api/v1/projects"),
        "201",
        "GetProject",
        ("get", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("post", "/api/v1/projects"),
        "201",
        "UpdateProject",
        ("patch", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("post", "/api/v1/projects"),
        "201",
        "DeleteProject",
        ("delete", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("get", PROJECT),
        "200",
        "UpdateProject",
        ("patch", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("get", PROJECT),
        "200",
        "DeleteProject",
        ("delete", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("patch", PROJECT),
        "200",
        "GetProject",
        ("get", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("patch", PROJECT),
        "200",
        "DeleteProject",
        ("delete", PROJECT),
        PROJECT_ID,
    ),
    link(
        ("post", "/api/v1/auth/register"),
        "201",
        "GetUser",
        ("get", USER),
        REGISTERED_USER_ID,
    ),
    link(
        ("post", "/api/v1/auth/login"),
        "200",
        "GetUser",
        ("get", USER),
        REGISTERED_USER_ID,
    ),
];

/// Adds `LINKS` to the responses they start from.
#[derive(Debug)]
struct ResourceLinks;

fn operation_mut<'a>(
    openapi: &'a mut utoipa::openapi::OpenApi,
    (method, path): (&str, &str),
) -> Option<&'a mut utoipa::openapi::path::Operation> {
    let item = openapi.paths.paths.get_mut(path)?;
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "put" => item.put.as_mut(),
        "patch" => item.patch.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

impl Modify for ResourceLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for spec in LINKS {
            let Some(target) =
                operation_mut(openapi, spec.to).and_then(|op| op.operation_id.clone())
            else {
                continue;
            };
            let Some(RefOr::T(response)) = operation_mut(openapi, spec.from)
                .and_then(|op| op.responses.responses.get_mut(spec.status))
            else {
                continue;
            };
            response.links.insert(
                spec.name.to_owned(),
                RefOr::T(
                    utoipa::openapi::link::LinkBuilder::new()
                        .operation_id(target)
                        .parameter(spec.parameter.0, spec.parameter.1)
                        .build(),
                ),
            );
        }
    }
}

/// The document, generated from the code.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as JSON, as served.
pub fn openapi_value() -> serde_json::Value {
    to_value(&openapi())
}

/// The response headers the server sends with every response that
/// documents them: `required: true`, which utoipa 5's `Header` cannot say.
const ALWAYS_SENT_HEADERS: &[&str] = &["ETag", "Location"];

/// Serialises a document, fixing what utoipa 5 gets wrong: it writes a
/// link's fields in snake_case (`operation_id`), where OpenAPI says
/// `operationId`, `operationRef` and `requestBody`; and it cannot mark a
/// response header required (`ALWAYS_SENT_HEADERS`).
fn to_value(openapi: &utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(openapi).expect("the OpenAPI document serialises");
    let operations = value
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(serde_json::Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let headers = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("headers"))
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|headers| headers.iter_mut())
            .filter(|(name, _)| ALWAYS_SENT_HEADERS.contains(&name.as_str()))
            .filter_map(|(_, header)| header.as_object_mut());
        for header in headers {
            header.insert("required".to_owned(), serde_json::Value::Bool(true));
        }
        let links = operation
            .get_mut("responses")
            .and_then(serde_json::Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut())
            .filter_map(|response| response.get_mut("links"))
            .filter_map(serde_json::Value::as_object_mut)
            .flat_map(|links| links.values_mut())
            .filter_map(serde_json::Value::as_object_mut);
        for link in links {
            for (wrong, right) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(field) = link.remove(wrong) {
                    link.insert(right.to_owned(), field);
                }
            }
        }
    }
    value
}

/// The document as pretty JSON with a final newline: what
/// `projects-api openapi` prints and what `openapi.json` holds.
pub fn openapi_json() -> String {
    let mut json =
        serde_json::to_string_pretty(&openapi_value()).expect("the OpenAPI document serialises");
    json.push('\n');
    json
}

/// A path of the document: its template and the methods it has.
struct DocumentedPath {
    template: String,
    segments: Vec<String>,
    methods: Vec<&'static str>,
}

/// The document's path that `path` matches, if any. The template with the
/// most literal segments wins, as in the router: `/api/v1/users/me` rather
/// than `/api/v1/users/{id}`.
fn documented_path(path: &str) -> Option<&'static DocumentedPath> {
    static PATHS: LazyLock<Vec<DocumentedPath>> = LazyLock::new(|| {
        openapi()
            .paths
            .paths
            .iter()
            .map(|(template, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                DocumentedPath {
                    template: template.clone(),
                    segments: template.split('/').map(str::to_owned).collect(),
                    methods,
                }
            })
            .collect()
    });
    let fits = |documented: &&DocumentedPath| {
        let mut segments = path.split('/');
        documented.segments.iter().all(|template| {
            segments.next().is_some_and(|segment| {
                template == segment
                    || (template.starts_with('{') && template.ends_with('}') && !segment.is_empty())
            })
        }) && segments.next().is_none()
    };
    PATHS.iter().filter(fits).max_by_key(|documented| {
        documented
            .segments
            .iter()
            .filter(|segment| !segment.starts_with('{'))
            .count()
    })
}

/// The methods the document lists for the path that `path` matches, if
/// any: the `Allow` of a 405. Every route is documented (a test checks), so
/// the document is the one list of what each path has; the docs' files
/// under `/docs/` are the one exception.
pub fn allowed_methods(path: &str) -> Option<Vec<&'static str>> {
    // The docs' own files are served (GET only) but are not operations.
    if path.starts_with("/docs/") {
        return Some(vec!["GET"]);
    }
    documented_path(path).map(|documented| documented.methods.clone())
}

/// The template (`/api/v1/projects/{id}`) of the documented path that
/// `path` matches: a route label that needs no router.
pub fn route_template(path: &str) -> Option<&'static str> {
    documented_path(path).map(|documented| documented.template.as_str())
}

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
/// `responses`), registered in `components(responses(...))` above.
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

/// This OpenAPI document.
///
/// Generated from the server's code; the interactive docs at `/docs` read it.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "docs",
    security(()),
    responses((
        status = 200,
        description = "This document (OpenAPI 3.1)",
        content_type = "application/json",
        body = Object,
        example = json!({
            "openapi": "3.1.0",
            "info": { "title": "projects-api", "version": env!("CARGO_PKG_VERSION") },
            "paths": {}
        }),
    ))
)]
pub async fn openapi_document() -> HttpResponse {
    // Built once: the document never changes at run time.
    static JSON: LazyLock<String> = LazyLock::new(|| {
        serde_json::to_string(&openapi_value()).expect("the OpenAPI document serialises")
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(JSON.as_str())
}

/// The docs page. Our own rather than Swagger UI's, so that it works at
/// `/docs` as well as `/docs/` (absolute asset paths) and loads nothing but
/// this origin's files.
const DOCS_INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>projects-api docs</title>
    <link rel="stylesheet" type="text/css" href="/docs/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="/docs/index.css">
    <link rel="icon" type="image/png" href="/docs/favicon-32x32.png" sizes="32x32">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="/docs/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="/docs/swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

/// The interactive API docs.
///
/// Swagger UI, served from the server itself: read the operations, authorize
/// with an access token and try requests out.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "docs",
    security(()),
    responses((
        status = 200,
        description = "The interactive API docs (an HTML page)",
        content_type = "text/html",
        body = String,
    ))
)]
pub async fn docs_page() -> HttpResponse {
    // Its Content-Security-Policy (`DOCS_CSP`) is set by the security
    // headers middleware, with every other response's headers.
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_INDEX)
}

/// Swagger UI's settings: the document above, no external validator badge
/// (it would load an image from another host), "Try it out" ready.
fn swagger_config() -> Arc<utoipa_swagger_ui::Config<'static>> {
    Arc::new(
        utoipa_swagger_ui::Config::new([OPENAPI_PATH])
            .validator_url("none")
            .try_it_out_enabled(true)
            .persist_authorization(false),
    )
}

/// `/docs/{file}`: the Swagger UI files embedded in the binary.
async fn docs_file(
    file: web::Path<String>,
    config: web::Data<Arc<utoipa_swagger_ui::Config<'static>>>,
) -> Result<HttpResponse, ApiError> {
    let file = file.into_inner();
    if file.is_empty() || file == "index.html" {
        return Ok(docs_page().await);
    }
    match utoipa_swagger_ui::serve(&file, Arc::clone(&config)) {
        Ok(Some(file)) => Ok(HttpResponse::Ok()
            .content_type(file.content_type)
            .body(file.bytes.into_owned())),
        Ok(None) => Err(ApiError::NotFound),
        Err(error) => Err(ApiError::Internal(error.to_string().into())),
    }
}

/// Mounts `/openapi.json` and `/docs`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(OPENAPI_PATH, web::get().to(openapi_document))
        .route(DOCS_PATH, web::get().to(docs_page))
        .service(
            // Guarded, so that other methods reach the default service (405
            // with `Allow`) like every other route's.
            web::resource("/docs/{file:.*}")
                .guard(actix_web::guard::Get())
                .app_data(web::Data::new(swagger_config()))
                .route(web::get().to(docs_file)),
        );
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::{OpenApiBuilder, PathsBuilder};

    fn op(id: &str, status: &str) -> utoipa::openapi::path::Operation {
        OperationBuilder::new()
            .operation_id(Some(id))
            .response(status, ResponseBuilder::new().description("ok").build())
            .build()
    }

    #[test]
    fn allow_comes_from_the_most_literal_template() {
        // `/users/me` is its own path, not `/users/{id}` with id "me".
        assert_eq!(
            allowed_methods("/api/v1/users/me"),
            Some(vec!["GET", "PATCH"])
        );
        assert_eq!(
            allowed_methods("/api/v1/users/01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f"),
            Some(vec!["GET", "PATCH", "DELETE"])
        );
        assert_eq!(allowed_methods("/docs/swagger-ui.css"), Some(vec!["GET"]));
        assert_eq!(allowed_methods("/api/v1/nope"), None);
    }

    #[test]
    fn route_templates_match_whole_paths_only() {
        assert_eq!(
            route_template("/api/v1/projects/01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f"),
            Some("/api/v1/projects/{id}")
        );
        assert_eq!(route_template("/api/v1/users/me"), Some("/api/v1/users/me"));
        assert_eq!(route_template("/api/v1/projects"), Some("/api/v1/projects"));
        assert_eq!(route_template("/api/v1/projects/"), None);
        assert_eq!(route_template("/api/v1/projects/a/b"), None);
        assert_eq!(route_template("/api/v1"), None);
    }

    #[test]
    fn links_chain_create_get_patch_delete_when_the_operations_exist() {
        let mut create = PathItem::new(HttpMethod::Post, op("create_project", "201"));
        create.get = Some(op("list_projects", "200"));
        let mut one = PathItem::new(HttpMethod::Get, op("get_project", "200"));
        one.patch = Some(op("update_project", "200"));
        one.delete = Some(op("delete_project", "204"));
        let mut openapi = OpenApiBuilder::new()
            .paths(
                PathsBuilder::new()
                    .path("/api/v1/projects", create)
                    .path(PROJECT, one),
            )
            .build();
        ResourceLinks.modify(&mut openapi);
        let json = to_value(&openapi);
        let links = &json["paths"]["/api/v1/projects"]["post"]["responses"]["201"]["links"];
        assert_eq!(links["GetProject"]["operationId"], "get_project");
        assert_eq!(links["UpdateProject"]["operationId"], "update_project");
        assert_eq!(links["DeleteProject"]["operationId"], "delete_project");
        assert_eq!(
            links["GetProject"]["parameters"]["id"],
            "$response.body#/id"
        );
        let from_get = &json["paths"][PROJECT]["get"]["responses"]["200"]["links"];
        assert_eq!(from_get["UpdateProject"]["operationId"], "update_project");
        // No users routes here: their links are left out, not dangling.
        assert!(!json.to_string().contains("GetUser"));
        assert!(!json.to_string().contains("operation_id"));
    }
}
