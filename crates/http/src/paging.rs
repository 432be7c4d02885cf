//! One way to answer a list page, for every list: the `Page` body and, when
//! more follow, the `Link` header of the next page (the same list's
//! parameters with the next cursor).

use std::fmt::{self, Write as _};

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpResponse, HttpResponseBuilder};
use projects_domain::Page;
use projects_domain::json::WriteJson;
use serde::Serialize;

/// `<{path}?{name}={value}&…&cursor={cursor}>; rel="next"`, written into
/// one string. Every value is a UUID, a fixed word, a number or base64url,
/// so nothing needs escaping.
pub(crate) fn next_link(path: &str, query: &[(&str, &dyn fmt::Display)], cursor: &str) -> String {
    let mut link = String::with_capacity(path.len() + cursor.len() + 32 + query.len() * 24);
    link.push('<');
    link.push_str(path);
    for (index, (name, value)) in query.iter().enumerate() {
        link.push(if index == 0 { '?' } else { '&' });
        link.push_str(name);
        link.push('=');
        // Writing into a `String` cannot fail.
        let _ = write!(link, "{value}");
    }
    link.push(if query.is_empty() { '?' } else { '&' });
    link.push_str("cursor=");
    link.push_str(cursor);
    link.push_str(">; rel=\"next\"");
    link
}

/// The 200 builder of a page, with its `Link` when more follow.
fn page_builder(
    next_cursor: Option<&str>,
    link: impl FnOnce(&str) -> String,
) -> HttpResponseBuilder {
    let mut response = HttpResponse::Ok();
    if let Some(cursor) = next_cursor {
        response.insert_header((header::LINK, link(cursor)));
    }
    response
}

/// 200 with the page; `link` makes the next page's `Link` from its cursor.
pub(crate) fn page_response<T: Serialize>(
    data: Vec<T>,
    next_cursor: Option<String>,
    link: impl FnOnce(&str) -> String,
) -> HttpResponse {
    page_builder(next_cursor.as_deref(), link).json(Page { data, next_cursor })
}

/// The same for items that write their own JSON ([`WriteJson`]: the same
/// bytes as `Serialize`, without `serde_json`'s per-byte escaping of ids
/// and timestamps).
pub(crate) fn written_page_response<T: WriteJson>(
    data: Vec<T>,
    next_cursor: Option<String>,
    link: impl FnOnce(&str) -> String,
) -> HttpResponse {
    let mut response = page_builder(next_cursor.as_deref(), link);
    // About what one project takes, so that the buffer grows once at most.
    let capacity = 64 + data.len() * 320;
    let body = Page { data, next_cursor }.to_json(capacity);
    response.content_type(ContentType::json()).body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_lists_the_parameters_then_the_cursor() {
        assert_eq!(
            next_link("/api/v1/x", &[("limit", &20), ("sort", &"name")], "abc"),
            "</api/v1/x?limit=20&sort=name&cursor=abc>; rel=\"next\""
        );
        assert_eq!(
            next_link("/api/v1/x", &[], "abc"),
            "</api/v1/x?cursor=abc>; rel=\"next\""
        );
    }
}
