//! `/api/v1/projects`: create, read, update (partial, with `If-Match`),
//! delete, and the keyset-paged list. A project the caller may not see is a
//! 404 on every verb, never a 403: the store applies the rule inside each
//! statement.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentType, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use projects_domain::inputs::{NewProject, ProjectPatch};
use projects_domain::json::{self, WriteJson as _};
use projects_domain::{
    Page, Project, ProjectAccess, ProjectCursor, ProjectId, ProjectListQuery, ProjectScope,
    ProjectView, Role,
};
use projects_domain::{ProjectSort, ProjectStatus};
use projects_store::{Claim, IdempotencyKey, ProjectRow, ProjectUpdate, StoredResponse};
use sha2::{Digest as _, Sha256};
use utoipa::openapi::path::Paths;
use utoipa::openapi::{RefOr, schema::Schema};
use utoipa_actix_web::OpenApiFactory;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::{CurrentUser, ProjectListParams, ValidatedJson};
use crate::paging::{self, written_page_response};
use crate::problem_responses::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, NotFound, PreconditionFailed, ServerErrors,
    Unauthorized,
};
use crate::{ApiError, AppState};

const BASE: &str = "/api/v1/projects";
const BY_ID: &str = "/api/v1/projects/{id}";
/// About what one project's JSON takes, so that its buffer grows once at most.
const PROJECT_JSON_BYTES: usize = 384;

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(create).service(list).service(ProjectById);
}

/// `/api/v1/projects/{id}`: read, update and delete on one resource, so that
/// the router runs the path's regex once per request. As three resources
/// (the method macros), a PATCH ran it twice and a DELETE three times: each
/// earlier resource matched the path and was then refused by its method
/// guard (~2,500 instructions a run). A method the path lacks still goes to
/// the application's default service (a resource without one of its own
/// falls back to it): 405 with `Allow`.
struct ProjectById;

impl HttpServiceFactory for ProjectById {
    fn register(self, config: &mut AppService) {
        web::resource(BY_ID)
            .route(web::get().to(get_one))
            .route(web::patch().to(update))
            .route(web::delete().to(remove))
            .register(config);
    }
}

impl OpenApiFactory for ProjectById {
    fn paths(&self) -> Paths {
        let mut paths = __path_get_one.paths();
        paths.merge(__path_update.paths());
        paths.merge(__path_remove.paths());
        paths
    }

    fn schemas(&self, schemas: &mut Vec<(String, RefOr<Schema>)>) {
        __path_get_one.schemas(schemas);
        __path_update.schemas(schemas);
        __path_remove.schemas(schemas);
    }
}

/// The token's role; the store confirms admin rights against the database
/// in the same statement.
fn access(caller: &CurrentUser) -> ProjectAccess {
    ProjectAccess::new(caller.id, caller.role == Role::Admin)
}

/// A project with its `ETag` (the version, quoted: a strong tag).
fn with_etag(
    mut response: actix_web::HttpResponseBuilder,
    project: ProjectView<'_>,
) -> HttpResponse {
    response
        .insert_header((header::ETAG, etag(project.version)))
        .content_type(ContentType::json())
        .body(project.to_json(PROJECT_JSON_BYTES))
}

/// `"3"`: the version in quotes, written without `format!`.
fn etag(version: i32) -> Vec<u8> {
    let mut tag = Vec::with_capacity(13);
    tag.push(b'"');
    json::integer(&mut tag, i64::from(version));
    tag.push(b'"');
    tag
}

/// `/api/v1/projects/{id}`, written without `format!` (UUIDs go through
/// the formatting machinery one piece at a time).
fn location(id: ProjectId) -> Vec<u8> {
    let mut path = Vec::with_capacity(BASE.len() + 1 + uuid::fmt::Hyphenated::LENGTH);
    path.extend_from_slice(BASE.as_bytes());
    path.push(b'/');
    let mut buffer = uuid::Uuid::encode_buffer();
    path.extend_from_slice(
        id.as_uuid()
            .hyphenated()
            .encode_lower(&mut buffer)
            .as_bytes(),
    );
    path
}

/// Create a project.
///
/// The caller owns the new project: 201 with it, its `Location` and its
/// `ETag`. With an `Idempotency-Key`, a retry gets the first response again.
#[utoipa::path(
    tag = "projects",
    operation_id = "create_project",
    request_body = NewProject,
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = r"^[!-~]+$",
            description = "1 to 255 visible ASCII characters (`!` to `~`), unique per request you mean: \
            the same key from you with the same body within 24 hours gets the first response \
            again (status, headers, body) with `Idempotent-Replayed: true`, from any instance; \
            with a different body 422; while the first request runs, 409. A malformed key is 400.",
            example = "create-apollo-7f3c"),
    ),
    responses(
        (status = 201, description = "Created; you own it (or, with `Idempotent-Replayed: true`, \
            the response to the first request with this `Idempotency-Key`)", body = Project, headers(
            ("Location" = String, description = "The new project: `/api/v1/projects/{id}`"),
            ("ETag" = String, description = "The project's version, quoted: `\"1\"`"),
            ("Idempotent-Replayed" = String, description = "`true` on a replayed response"),
        )),
        (status = 401, response = Unauthorized),
        (status = 409, response = Conflict),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[post("/api/v1/projects")]
pub async fn create(
    caller: CurrentUser,
    state: web::Data<AppState>,
    request: HttpRequest,
    body: ValidatedJson<NewProject>,
) -> Result<HttpResponse, ApiError> {
    let Some(key) = idempotency_key(&request)? else {
        let project = state.store.projects().create(caller.id, &body).await?;
        tracing::info!(project.id = %project.id, user.id = %caller.id, "project created");
        return Ok(created(&project));
    };
    let request_hash = fingerprint(&body);
    let key = IdempotencyKey::new(caller.id, key, &request_hash);
    match state.store.idempotency_keys().claim(key).await? {
        Claim::Owned => {}
        Claim::Replay(stored) => {
            tracing::info!(user.id = %caller.id, "idempotent request replayed");
            let mut response = replay(&stored);
            response.headers_mut().insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
            return Ok(response);
        }
        Claim::InFlight => {
            return Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still in progress: retry later".into(),
            ));
        }
        Claim::Mismatch => {
            return Err(ApiError::invalid_field(
                "Idempotency-Key",
                "reused",
                "this key was used for a request with a different body: use a new key",
            ));
        }
    }
    let outcome = state
        .store
        .projects()
        .create_idempotent(key, &body, |project| stored(&created(project), project))
        .await;
    match outcome {
        Ok((project, stored)) => {
            tracing::info!(project.id = %project.id, user.id = %caller.id, "project created");
            Ok(replay(&stored))
        }
        Err(error) => {
            // Nothing was created: let a retry run.
            if let Err(release) = state.store.idempotency_keys().release(key).await {
                tracing::warn!(error = ?release, "cannot release an idempotency key");
            }
            Err(error.into())
        }
    }
}

/// The 201 answer to a create.
fn created(project: &Project) -> HttpResponse {
    let mut response = HttpResponse::Created();
    response.insert_header((header::LOCATION, location(project.id)));
    with_etag(response, project.view())
}

/// The parts of `response` to replay: status, `Location`, `ETag`,
/// `Content-Type`, and the body (the project, serialised once more).
fn stored(response: &HttpResponse, project: &Project) -> StoredResponse {
    let headers = [header::LOCATION, header::ETAG, header::CONTENT_TYPE]
        .into_iter()
        .filter_map(|name| {
            let value = response.headers().get(&name)?.to_str().ok()?;
            Some((name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    StoredResponse {
        status: response.status().as_u16(),
        headers,
        body: project.to_json(PROJECT_JSON_BYTES),
    }
}

fn replay(stored: &StoredResponse) -> HttpResponse {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in &stored.headers {
        response.insert_header((name.as_str(), value.as_str()));
    }
    response.body(stored.body.clone())
}

/// The `Idempotency-Key` header, if sent: 1 to 255 visible ASCII
/// characters (RFC 5234 VCHAR), else 400.
fn idempotency_key(request: &HttpRequest) -> Result<Option<&str>, ApiError> {
    let mut values = request.headers().get_all("idempotency-key");
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::BadRequest(
            "send one Idempotency-Key header, not several".into(),
        ));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (`!` to `~`, no spaces)"
                .into(),
        ));
    }
    Ok(value.to_str().ok())
}

/// What makes two creates "the same request": the route and the validated
/// body (so spacing, key order and trimmed whitespace do not count).
fn fingerprint(project: &NewProject) -> [u8; 32] {
    let mut hash = Sha256::new();
    let mut field = |value: Option<&str>| match value {
        None => hash.update([0u8]),
        Some(text) => {
            hash.update([1u8]);
            hash.update((text.len() as u64).to_be_bytes());
            hash.update(text.as_bytes());
        }
    };
    field(Some("POST /api/v1/projects"));
    field(project.name.as_deref());
    field(project.description.as_deref());
    field(Some(project.status.as_str()));
    hash.finalize().into()
}

/// Get a project.
///
/// The project, with its version as `ETag`; 404 for one the caller may not
/// see.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "get_project",
    params(("id" = uuid::Uuid, Path, description = "The project's id")),
    responses(
        (status = 200, description = "The project", body = Project, headers(("ETag" = String, description = "The project's version, quoted: `\"3\"`"))),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
async fn get_one(
    caller: CurrentUser,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
) -> Result<HttpResponse, ApiError> {
    let row = state
        .store
        .projects()
        .find_row(access(&caller), *id)
        .await?;
    Ok(with_etag(HttpResponse::Ok(), row.view()?))
}

/// Update a project.
///
/// Only the fields sent change; with `If-Match`, only if the version still
/// matches (else 412, nothing changed). An empty body changes nothing and
/// answers the project as it is.
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "update_project",
    params(
        ("id" = uuid::Uuid, Path, description = "The project's id"),
        ("If-Match" = Option<String>, Header, nullable = false,
            pattern = r#"^ *(\*|((W/)?"[!#-+\--~]*")?( *, *((W/)?"[!#-+\--~]*")?)*) *$"#, description = "Update only if the project's version is still this one: \
            an `ETag` such as `\"3\"`, a list of them, or `*`; else 412 and nothing changes \
            (an empty list matches nothing)"),
    ),
    request_body = ProjectPatch,
    responses(
        (status = 200, description = "The project, updated", body = Project, headers(("ETag" = String, description = "The project's version, quoted: `\"3\"`"))),
        (status = 404, response = NotFound),
        (status = 412, response = PreconditionFailed),
        (status = 401, response = Unauthorized),
        ServerErrors,
        JsonBodyErrors,
    )
)]
async fn update(
    caller: CurrentUser,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
    request: actix_web::HttpRequest,
    body: ValidatedJson<ProjectPatch>,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(request.headers())?;
    let outcome = state
        .store
        .projects()
        .update(access(&caller), *id, &body, expected.as_deref())
        .await?;
    match outcome {
        ProjectUpdate::Applied(project) => Ok(with_etag(HttpResponse::Ok(), project.view())),
        ProjectUpdate::Stale { .. } => Err(ApiError::PreconditionFailed),
    }
}

/// Delete a project.
///
/// 204; 404 for one the caller may not see.
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{id}",
    tag = "projects",
    operation_id = "delete_project",
    params(("id" = uuid::Uuid, Path, description = "The project's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
async fn remove(
    caller: CurrentUser,
    state: web::Data<AppState>,
    id: web::Path<ProjectId>,
) -> Result<HttpResponse, ApiError> {
    state.store.projects().delete(access(&caller), *id).await?;
    tracing::info!(project.id = %*id, user.id = %caller.id, "project deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// List projects.
///
/// The caller's own projects; admins may pass `owner_id` (another owner's) or
/// `all=true` (everyone's), others get 403 for trying.
#[utoipa::path(
    tag = "projects",
    operation_id = "list_projects",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, min_length = 1, description = "The `next_cursor` of the previous page, with the same other parameters"),
        ("status" = Option<ProjectStatus>, Query, description = "Only projects with this status"),
        ("sort" = Option<ProjectSort>, Query, description = "The order (default `-created_at`, newest first); `-` is descending"),
        ("owner_id" = Option<uuid::Uuid>, Query, description = "Admins: another owner's projects (not with `all`)"),
        ("all" = Option<bool>, Query, description = "Admins: everyone's projects (not with `owner_id`)"),
    ),
    responses(
        (status = 200, description = "A page of projects", body = Page<Project>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page")),
            example = json!({
                "data": [{
                    "id": "01936f4f-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
                    "owner_id": "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f",
                    "name": "Apollo",
                    "description": "Land on the Moon and return safely.",
                    "status": "active",
                    "version": 1,
                    "created_at": "2026-01-02T03:04:05.123456Z",
                    "updated_at": "2026-01-02T03:04:05.123456Z"
                }],
                "next_cursor": "AZNvTo0qezyeHyo7TF1ufw"
            })),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[get("/api/v1/projects")]
pub async fn list(
    caller: CurrentUser,
    state: web::Data<AppState>,
    params: ProjectListParams,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.role == Role::Admin;
    // Who may use the admin-only parameters comes first: a user who sends
    // both is refused for using them at all, not for combining them.
    let scope = match (params.all, params.owner_id) {
        (true, _) | (_, Some(_)) if !admin => return Err(ApiError::Forbidden),
        (true, Some(_)) => {
            return Err(ApiError::BadRequest(
                "`all=true` and `owner_id` cannot be combined".into(),
            ));
        }
        (true, None) => ProjectScope::All,
        (false, Some(owner)) => ProjectScope::Owner(owner),
        (false, None) => ProjectScope::Owner(caller.id),
    };
    let query = ProjectListQuery {
        scope,
        status: params.status,
        sort: params.sort,
        limit: params.limit,
    };
    let codec = &state.cursors.projects;
    let after = match params.cursor.as_deref() {
        None => None,
        Some(text) => {
            let cursor = codec.decode_project(text)?;
            if !cursor.belongs_to(&query) {
                return Err(ApiError::BadRequest(
                    "`cursor` belongs to a list with another sort or filter: \
                     repeat that list's parameters, or start again without it"
                        .into(),
                ));
            }
            Some(cursor.after)
        }
    };
    let slice = state
        .store
        .projects()
        .list(access(&caller), &query, after.as_ref())
        .await?;
    let next_cursor = slice.next.map(|after| {
        codec.encode_project(&ProjectCursor {
            sort: query.sort,
            scope: query.scope,
            status: query.status,
            after,
        })
    });
    let projects = slice
        .items
        .iter()
        .map(ProjectRow::view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(written_page_response(projects, next_cursor, |cursor| {
        next_link(&params, cursor)
    }))
}

/// `<…>; rel="next"`: the same list's parameters with the next cursor.
fn next_link(params: &ProjectListParams, cursor: &str) -> String {
    let limit = params.limit.get();
    let mut query: [(&str, &dyn std::fmt::Display); 5] = [
        ("limit", &limit),
        ("sort", &params.sort),
        ("", &""),
        ("", &""),
        ("", &""),
    ];
    let mut used = 2;
    let status;
    if let Some(value) = params.status {
        status = value;
        query[used] = ("status", &status);
        used += 1;
    }
    let owner;
    if let Some(value) = params.owner_id {
        owner = value;
        query[used] = ("owner_id", &owner);
        used += 1;
    }
    if params.all {
        query[used] = ("all", &true);
        used += 1;
    }
    paging::next_link(BASE, &query[..used], cursor)
}

/// The versions an `If-Match` header accepts: `None` without the header or
/// with `*` (the project must merely exist), else the strong tags listed.
/// Weak tags (`W/"3"`) never match: `If-Match` uses the strong comparison
/// (RFC 9110, 13.1.1). A header that is not a list of entity tags is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<Vec<i32>>, ApiError> {
    let values: Vec<&HeaderValue> = headers.get_all(header::IF_MATCH).collect();
    if values.is_empty() {
        return Ok(None);
    }
    let malformed = || {
        ApiError::BadRequest(
            "`If-Match` must be `*` or a list of entity tags such as `\"3\"`".into(),
        )
    };
    let mut versions = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| malformed())?;
        // Empty list elements are allowed and ignored (RFC 9110, 5.6.1.2):
        // an empty `If-Match` lists no tag, so it matches nothing (412).
        for tag in text.split(',').map(str::trim).filter(|tag| !tag.is_empty()) {
            if tag == "*" {
                return Ok(None);
            }
            let (weak, quoted) = match tag.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, tag),
            };
            let opaque = quoted
                .strip_prefix('"')
                .and_then(|rest| rest.strip_suffix('"'))
                .filter(|inner| !inner.contains('"'))
                .ok_or_else(malformed)?;
            if !weak && let Ok(version) = opaque.parse::<i32>() {
                versions.push(version);
            }
        }
    }
    Ok(Some(versions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Option<Vec<i32>>, ApiError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::IF_MATCH,
            HeaderValue::from_str(value).expect("a header value"),
        );
        if_match(&headers)
    }

    #[test]
    fn etags_and_locations_are_what_format_writes() {
        for version in [1, 9, 10, 123_456, i32::MAX, 0, -1, i32::MIN] {
            assert_eq!(etag(version), format!("\"{version}\"").into_bytes());
        }
        for _ in 0..50 {
            let id = ProjectId::new();
            assert_eq!(location(id), format!("{BASE}/{id}").into_bytes());
        }
        let id = ProjectId::from_uuid(uuid::Uuid::from_bytes([0xab; 16]));
        assert_eq!(location(id), format!("{BASE}/{id}").into_bytes());
    }

    #[test]
    fn if_match_reads_strong_tags_stars_and_lists() {
        assert_eq!(if_match(&HeaderMap::new()).ok(), Some(None));
        assert_eq!(parse("\"3\"").ok(), Some(Some(vec![3])));
        assert_eq!(parse("\"1\", \"4\"").ok(), Some(Some(vec![1, 4])));
        assert_eq!(parse("*").ok(), Some(None));
        // Weak and foreign tags are well-formed but match nothing.
        assert_eq!(parse("W/\"3\"").ok(), Some(Some(vec![])));
        assert_eq!(parse("\"abc\"").ok(), Some(Some(vec![])));
        // Empty elements are skipped; an empty list matches nothing.
        assert_eq!(parse("").ok(), Some(Some(vec![])));
        assert_eq!(parse("\"2\", , \"5\",").ok(), Some(Some(vec![2, 5])));
        for bad in ["3", "\"3", "'3'", "\"3\"x"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Any header text: a 400 or a decision, never a panic; a list of
        /// strong tags built from versions reads back as those versions.
        #[test]
        fn fuzz_if_match_parses_or_refuses(raw in "[\\x20-\\x7e]{0,120}") {
            let _ = parse(&raw);
        }

        #[test]
        fn fuzz_if_match_reads_back_the_versions_it_lists(versions in proptest::collection::vec(proptest::num::i32::ANY, 1..8), weak in proptest::bool::ANY) {
            let listed: Vec<String> = versions.iter().map(|v| format!("{}\"{v}\"", if weak { "W/" } else { "" })).collect();
            let parsed = parse(&listed.join(", ")).ok().flatten();
            let expected = if weak { Vec::new() } else { versions.clone() };
            proptest::prop_assert_eq!(parsed, Some(expected));
        }
    }
}
