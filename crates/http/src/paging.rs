//! One way to answer a list page, for every list: the `Page` body and, when
//! more follow, the `Link` header of the next page (the same list's
//! parameters with the next cursor).

use actix_web::HttpResponse;
use actix_web::http::header;
use projects_domain::Page;
use serde::Serialize;

/// `<{path}?{query}&cursor={cursor}>; rel="next"`. Every value is a UUID, a
/// fixed word, a number or base64url, so nothing needs escaping.
pub(crate) fn next_link(path: &str, mut query: Vec<String>, cursor: &str) -> String {
    query.push(format!("cursor={cursor}"));
    format!("<{path}?{}>; rel=\"next\"", query.join("&"))
}

/// 200 with the page; `link` makes the next page's `Link` from its cursor.
pub(crate) fn page_response<T: Serialize>(
    data: Vec<T>,
    next_cursor: Option<String>,
    link: impl FnOnce(&str) -> String,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = &next_cursor {
        response.insert_header((header::LINK, link(cursor)));
    }
    response.json(Page { data, next_cursor })
}
