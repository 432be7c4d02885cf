//! The OpenAPI 3.1 document, assembled from the routes (`routes`: each
//! registered handler's `#[utoipa::path]` annotation is one operation), the
//! types' `ToSchema` derives, the shared error responses
//! (`problem_responses`) and the links (`openapi_links`).
//!
//! Documenting a handler: annotate it with `#[utoipa::path(...)]` (tag,
//! parameters, request body, every response; the method and the full path
//! come from its `#[get("/api/v1/...")]`), register it in its module's
//! `routes`, and refer to the shared error responses
//! (`(status = 404, response = NotFound)`) so that every error is
//! documented once, as `application/problem+json`. Operations need the
//! bearer token unless they say `security(())`.

use std::sync::LazyLock;

use actix_web::App;
use actix_web::web::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi as _};
use utoipa_actix_web::AppExt as _;

use crate::error::{FieldError, Problem};
use crate::openapi_links::ResourceLinks;
use crate::problem_responses::{
    BadRequest, Conflict, EmailNotVerified, Forbidden, InternalError, InvalidAccountToken,
    MethodNotAllowed, NotFound, PayloadTooLarge, PreconditionFailed, ServiceUnavailable,
    TooManyPasswordChecks, TooManyRequests, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use crate::{accounts, auth, routes, sessions};
use projects_domain::inputs::{
    Login, NewProject, PasswordResetConfirm, PasswordResetRequest, ProjectPatch, RefreshRequest,
    Registration, TokenConfirm, UserPatch, UserSelfPatch,
};
use projects_domain::{Project, ProjectSort, ProjectStatus, Role, User};

/// The name of the bearer-token security scheme.
pub const BEARER_AUTH: &str = "bearer_auth";

/// The whole API, as clients see it, but for its paths (from `routes`) and
/// what `MODIFIERS` add.
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

/// What the document gets once its paths are in, in this order.
const MODIFIERS: [&dyn Modify; 5] = [
    &BearerAuth,
    &PublicOperations,
    &ResourceLinks,
    &ClosedInputs,
    &PageItemRefs,
];

/// The document, generated from the code: `ApiDoc` with the paths of
/// every route that `routes` registers (collected from an application that
/// is built for that and never run).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut openapi) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes::routes)
        .split_for_parts();
    for modifier in MODIFIERS {
        modifier.modify(&mut openapi);
    }
    openapi
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

/// The document as served at `/openapi.json` (compact JSON), built once:
/// it never changes at run time.
pub fn served_json() -> Bytes {
    static JSON: LazyLock<Bytes> = LazyLock::new(|| {
        serde_json::to_vec(&openapi_value())
            .expect("the OpenAPI document serialises")
            .into()
    });
    JSON.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi_links::PROJECT;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
    use utoipa::openapi::response::ResponseBuilder;
    use utoipa::openapi::{OpenApiBuilder, PathsBuilder};

    fn op(id: &str, status: &str) -> utoipa::openapi::path::Operation {
        OperationBuilder::new()
            .operation_id(Some(id))
            .response(status, ResponseBuilder::new().description("ok").build())
            .build()
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
