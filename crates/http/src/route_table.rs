//! The route table the server uses at run time: which documented path a
//! request path matches, for the `Allow` header of a 405 and the `route`
//! label of the request metrics. The document's paths are collected from
//! the routes the router mounts (`routes`), so it is the one list of what
//! each path has.

use std::sync::LazyLock;

use crate::openapi::openapi;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
