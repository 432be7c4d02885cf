//! The OpenAPI links of the document: after one operation answers, which
//! operations can follow with a value taken from the response. Clients and
//! schemathesis' stateful phase follow them: create → get → patch → delete.

use utoipa::Modify;
use utoipa::openapi::RefOr;

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

pub(crate) const PROJECT: &str = "/api/v1/projects/{id}";
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
pub(crate) struct ResourceLinks;

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
