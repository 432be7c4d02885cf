//! The methods each path of the contract has, for the `Allow` header of a
//! 405. Route macros guard whole resources by method, so actix falls
//! through to the default service (a 404) for a path it knows with a method
//! it lacks; the default service asks here whether the path exists.

use actix_web::HttpRequest;
use actix_web::dev::ResourceDef;

/// Patterns in the contract, the literal ones before the ones they overlap
/// (`/users/me` before `/users/{id}`).
const ROUTES: &[(&str, &str)] = &[
    ("/api/v1/auth/register", "POST"),
    ("/api/v1/auth/login", "POST"),
    ("/api/v1/auth/refresh", "POST"),
    ("/api/v1/auth/logout", "POST"),
    ("/api/v1/users/me", "GET, PATCH"),
    ("/api/v1/users", "GET"),
    ("/api/v1/users/{id}", "GET, PATCH, DELETE"),
    ("/api/v1/projects", "GET, POST"),
    ("/api/v1/projects/{id}", "GET, PATCH, DELETE"),
    ("/health/live", "GET"),
    ("/health/ready", "GET"),
    ("/openapi.json", "GET"),
    ("/docs", "GET"),
    ("/metrics", "GET"),
];

/// `Some(methods)` when a route is mounted at this path (so the method is
/// what is wrong), `None` when nothing is (a plain 404).
pub fn allowed_methods(req: &HttpRequest) -> Option<Vec<&'static str>> {
    let path = req.path();
    if !req.resource_map().has_resource(path) {
        return None;
    }
    let methods = ROUTES
        .iter()
        .find(|(pattern, _)| ResourceDef::new(*pattern).is_match(path))
        .map_or("", |(_, methods)| methods);
    Some(methods.split(", ").filter(|m| !m.is_empty()).collect())
}
