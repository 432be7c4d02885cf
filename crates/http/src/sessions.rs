//! `/api/v1/auth/sessions`: the caller's live sessions, and ending them
//! (one, all but the current one, or all). Also [`record_ending`], which
//! every handler that ends sessions calls.

use actix_web::{HttpRequest, HttpResponse, delete, get, web};
use metrics::counter;
use projects_domain::{Page, Session, SessionEndReason, SessionId, Slice, Timestamp};
use projects_store::{EndedSessions, SessionScope};
use serde::{Deserialize, Serialize};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::extract::{CurrentUser, PageParams};
use crate::metrics::SESSIONS_ENDED_TOTAL;
use crate::paging::page_response;
use crate::problem_responses::{BadRequest, NotFound, ServerErrors, Unauthorized};
use crate::{ApiError, AppState};

const BASE: &str = "/api/v1/auth/sessions";

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(list).service(end_one).service(end_many);
}

/// After a store call ended sessions: this instance refuses their access
/// tokens at once, the others learn of it (Redis, the feed), and the
/// metric counts them. Call it before answering.
pub(crate) fn record_ending(state: &AppState, ended: &EndedSessions, reason: SessionEndReason) {
    if ended.is_empty() {
        return;
    }
    state.revocations.ended_here(ended);
    counter!(SESSIONS_ENDED_TOTAL, "reason" => reason.as_str()).increment(ended.len() as u64);
    tracing::info!(
        session.reason = reason.as_str(),
        session.count = ended.len(),
        "sessions ended"
    );
}

/// A live session of the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "01936f4e-9b1c-7d2e-8f3a-4b5c6d7e8f9a",
    "created_at": "2026-01-02T03:04:05.123456Z",
    "last_used_at": "2026-01-09T10:11:12.654321Z",
    "expires_at": "2026-02-08T10:11:12.654321Z",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "ip": "203.0.113.7",
    "current": true
}))]
pub struct SessionInfo {
    /// The session's id: the `sid` claim of its access tokens.
    #[schema(value_type = String, format = Uuid)]
    id: SessionId,
    /// When the login (or registration) started it.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// Its last refresh (or its start).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    last_used_at: Timestamp,
    /// When it ends unless refreshed before: the earlier of its absolute
    /// limit (`SESSION_MAX_AGE_DAYS` from its start) and its idle limit
    /// (`REFRESH_TOKEN_TTL_DAYS` from its last use).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: Timestamp,
    /// The `User-Agent` it started with (at most 256 characters).
    #[schema(max_length = 256)]
    user_agent: Option<String>,
    /// The client address it started from.
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    ip: Option<std::net::IpAddr>,
    /// Whether this is the session of the access token of the request.
    current: bool,
}

impl SessionInfo {
    fn new(session: Session, current: SessionId) -> Self {
        Self {
            current: session.id == current,
            id: session.id,
            created_at: session.created_at,
            last_used_at: session.last_used_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

/// List your sessions.
///
/// The caller's live sessions (one per login), newest first.
#[utoipa::path(
    tag = "sessions",
    operation_id = "list_sessions",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, min_length = 1, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of your live sessions, newest first; `current` marks the one of this access token",
            body = Page<SessionInfo>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page")),
            example = json!({
                "data": [{
                    "id": "01936f4e-9b1c-7d2e-8f3a-4b5c6d7e8f9a",
                    "created_at": "2026-01-02T03:04:05.123456Z",
                    "last_used_at": "2026-01-09T10:11:12.654321Z",
                    "expires_at": "2026-02-08T10:11:12.654321Z",
                    "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                    "ip": "203.0.113.7",
                    "current": true
                }],
                "next_cursor": null
            })),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[get("/api/v1/auth/sessions")]
pub async fn list(
    state: web::Data<AppState>,
    caller: CurrentUser,
    params: PageParams,
) -> Result<HttpResponse, ApiError> {
    let limit = usize::from(params.limit.get());
    let codec = &state.cursors.sessions;
    let after: Option<SessionId> = params
        .cursor
        .as_deref()
        .map(|text| codec.decode(text))
        .transpose()?;
    let rows = state
        .store
        .sessions()
        .list(caller.id, after, i64::from(params.limit.get()) + 1)
        .await?;
    let slice = Slice::from_overfetch(rows, limit, |session| session.id);
    let next_cursor = slice.next.map(|id| codec.encode(&id));
    let data: Vec<SessionInfo> = slice
        .items
        .into_iter()
        .map(|session| SessionInfo::new(session, caller.session_id))
        .collect();
    Ok(page_response(data, next_cursor, |cursor| {
        params.next_link(BASE, cursor)
    }))
}

/// End one of your sessions.
///
/// Ends one session of the caller (possibly the current one); another user's,
/// an ended or an unknown one is 404.
#[utoipa::path(
    tag = "sessions",
    operation_id = "end_session",
    params(("id" = uuid::Uuid, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended: none of its refresh tokens works any more, and its access tokens get 401 on every instance within a second"),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[delete("/api/v1/auth/sessions/{id}")]
pub async fn end_one(
    state: web::Data<AppState>,
    caller: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session: SessionId = id.parse().map_err(|_| ApiError::path_id_not_uuid())?;
    let scope = SessionScope::One {
        user: caller.id,
        session,
    };
    if end_by_user(&state, scope).await?.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndManyQuery {
    include_current: Option<String>,
}

/// End your other sessions.
///
/// Ends every session of the caller except the current one; with
/// `include_current=true`, that one too.
#[utoipa::path(
    tag = "sessions",
    operation_id = "end_sessions",
    params(
        ("include_current" = Option<bool>, Query, description = "End the session of this access token too (default false)"),
    ),
    responses(
        (status = 204, description = "Ended (also when there was nothing to end)"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[delete("/api/v1/auth/sessions")]
pub async fn end_many(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let query = web::Query::<EndManyQuery>::from_query(req.query_string())
        .map_err(|_| {
            ApiError::BadRequest(
                "the only query parameter is `include_current` (`true` or `false`)".into(),
            )
        })?
        .into_inner();
    let include_current = match query.include_current.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "`include_current` must be `true` or `false`".into(),
            ));
        }
    };
    let scope = if include_current {
        SessionScope::AllOfUser(caller.id)
    } else {
        SessionScope::AllBut {
            user: caller.id,
            keep: caller.session_id,
        }
    };
    end_by_user(&state, scope).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ends the sessions in `scope` at their user's request, and tells every
/// instance; returns what was ended (nothing, if none was live).
async fn end_by_user(state: &AppState, scope: SessionScope) -> Result<EndedSessions, ApiError> {
    let ended = state
        .store
        .sessions()
        .end(scope, SessionEndReason::Revoked)
        .await?;
    record_ending(state, &ended, SessionEndReason::Revoked);
    Ok(ended)
}
