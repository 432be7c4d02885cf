//! `ProjectListParams`: the query string of `GET /api/v1/projects`, each
//! parameter checked with its own clear 400 message; `PageParams`: the
//! `limit` and `cursor` of the lists that have nothing else (users,
//! sessions). Parameters are read as
//! text first so that a wrong value is reported by name rather than by a
//! generic deserialisation error.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use projects_domain::{Limit, ProjectSort, ProjectStatus, UserId};
use serde::Deserialize;

use crate::ApiError;

/// The list parameters as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListParams {
    limit: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    sort: Option<String>,
    owner_id: Option<String>,
    all: Option<String>,
}

/// The list parameters, parsed. `owner_id` and `all` are admin-only; the
/// handler decides who may use them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProjectListParams {
    pub limit: Limit,
    pub cursor: Option<String>,
    pub status: Option<ProjectStatus>,
    pub sort: ProjectSort,
    pub owner_id: Option<UserId>,
    pub all: bool,
}

/// The page size every list shares (`Limit`: 1 to 100, default 20).
fn parse_limit(raw: Option<&str>) -> Result<Limit, ApiError> {
    match raw {
        None => Ok(Limit::default()),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .and_then(|value| Limit::new(value).ok())
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`limit` must be an integer from {} to {}",
                    Limit::MIN,
                    Limit::MAX
                ))
            }),
    }
}

fn bad(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_owned())
}

impl ProjectListParams {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let raw = web::Query::<RawListParams>::from_query(query)
            .map_err(|error| {
                ApiError::BadRequest(format!(
                    "the query string is invalid: {}; the parameters are `limit`, `cursor`, \
                     `status`, `sort`, `owner_id` and `all`",
                    query_problem(&error.to_string())
                ))
            })?
            .into_inner();
        let limit = parse_limit(raw.limit.as_deref())?;
        let status = raw
            .status
            .as_deref()
            .map(str::parse::<ProjectStatus>)
            .transpose()
            .map_err(|_| bad("`status` must be one of `active`, `archived`, `completed`"))?;
        let sort = raw
            .sort
            .as_deref()
            .map(str::parse::<ProjectSort>)
            .transpose()
            .map_err(|error| ApiError::BadRequest(error.to_string()))?
            .unwrap_or_default();
        let owner_id = raw
            .owner_id
            .as_deref()
            .map(str::parse::<UserId>)
            .transpose()
            .map_err(|_| bad("`owner_id` must be a UUID"))?;
        let all = match raw.all.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad("`all` must be `true` or `false`")),
        };
        let cursor = match raw.cursor {
            Some(cursor) if cursor.is_empty() => return Err(bad("`cursor` must not be empty")),
            cursor => cursor,
        };
        Ok(Self {
            limit,
            cursor,
            status,
            sort,
            owner_id,
            all,
        })
    }
}

/// `limit` and `cursor`, parsed; other parameters are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageParams {
    pub limit: Limit,
    pub cursor: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawPageParams {
    limit: Option<String>,
    cursor: Option<String>,
}

impl PageParams {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let raw = web::Query::<RawPageParams>::from_query(query)
            .map_err(|_| bad("the query string is malformed"))?
            .into_inner();
        let limit = parse_limit(raw.limit.as_deref())?;
        Ok(Self {
            limit,
            cursor: raw.cursor,
        })
    }

    /// The `Link` header value of the next page of the list at `path`. The
    /// cursor is base64url, so nothing needs escaping.
    pub fn next_link(&self, path: &str, cursor: &str) -> String {
        crate::paging::next_link(path, &[("limit", &self.limit.get())], cursor)
    }
}

impl FromRequest for PageParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()))
    }
}

/// serde_urlencoded's message without the "Query deserialize error" prefix.
fn query_problem(message: &str) -> &str {
    message
        .split_once(": ")
        .map_or(message, |(_, problem)| problem)
}

impl FromRequest for ProjectListParams {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::parse(req.query_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_to_an_empty_query() {
        let params = ProjectListParams::parse("").expect("valid");
        assert_eq!(params, ProjectListParams::default());
        assert_eq!(params.limit.get(), 20);
        assert_eq!(params.sort, ProjectSort::CreatedAtDesc);
    }

    #[test]
    fn every_parameter_parses() {
        let owner = UserId::new();
        let params = ProjectListParams::parse(&format!(
            "limit=5&cursor=abc&status=archived&sort=-name&owner_id={owner}&all=true"
        ))
        .expect("valid");
        assert_eq!(params.limit.get(), 5);
        assert_eq!(params.cursor.as_deref(), Some("abc"));
        assert_eq!(params.status, Some(ProjectStatus::Archived));
        assert_eq!(params.sort, ProjectSort::NameDesc);
        assert_eq!(params.owner_id, Some(owner));
        assert!(params.all);
    }

    #[test]
    fn page_params_read_limit_and_cursor() {
        assert_eq!(PageParams::parse("").expect("valid"), PageParams::default());
        let params = PageParams::parse("limit=5&cursor=abc&other=1").expect("valid");
        assert_eq!(
            (params.limit.get(), params.cursor.as_deref()),
            (5, Some("abc"))
        );
        assert_eq!(
            params.next_link("/api/v1/users", "xyz"),
            "</api/v1/users?limit=5&cursor=xyz>; rel=\"next\""
        );
        for query in ["limit=0", "limit=101", "limit=x", "limit=1&limit=2"] {
            assert!(PageParams::parse(query).is_err(), "{query}");
        }
    }

    #[test]
    fn bad_values_name_their_parameter() {
        for (query, name) in [
            ("limit=0", "`limit`"),
            ("limit=101", "`limit`"),
            ("limit=ten", "`limit`"),
            ("status=deleted", "`status`"),
            ("sort=id", "`sort`"),
            ("owner_id=42", "`owner_id`"),
            ("all=yes", "`all`"),
            ("cursor=", "`cursor`"),
            ("colour=red", "colour"),
            ("limit=1&limit=2", "limit"),
        ] {
            let error = ProjectListParams::parse(query).expect_err(query);
            assert!(
                matches!(&error, ApiError::BadRequest(message) if message.contains(name)),
                "{query}: {error}"
            );
        }
    }
}
