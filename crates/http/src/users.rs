//! `/api/v1/users/*`: the caller's own profile, and the admin routes.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, web};
use projects_auth::Verification;
use projects_domain::inputs::{UserPatch, UserSelfPatch};
use projects_domain::{Page, SessionEndReason, Slice, User, UserId};
use projects_store::{Issued, UserUpdate};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::log_attempt;
use crate::client_ip::ClientIp;
use crate::error::CallerLookup;
use crate::extract::{AdminUser, CurrentUser, PageParams, ValidatedJson};
use crate::paging::page_response;
use crate::problem_responses::{
    BadRequest, Conflict, Forbidden, JsonBodyErrors, NotFound, ServerErrors, TooManyPasswordChecks,
    Unauthorized,
};
use crate::rate_limit::{Scope, Standing};
use crate::sessions::record_ending;
use crate::{ApiError, AppState};

/// The caller's own account.
const ME: &str = "/api/v1/users/me";

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    // `/users/me` before `/users/{id}`, so that "me" is never taken for an
    // id; the `{id}` routes also refuse "me" (`not_me`), so that a method
    // `/users/me` lacks (DELETE) falls through to the default service and
    // answers 405 with `Allow`, instead of reaching `/users/{id}`.
    cfg.service(me)
        .service(update_me)
        .service(list)
        .service(get_one)
        .service(update)
        .service(remove);
}

/// Get your account.
///
/// The user of the access token.
#[utoipa::path(
    tag = "users",
    operation_id = "get_me",
    responses(
        (status = 200, description = "Your account", body = User),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[get("/api/v1/users/me")]
pub async fn me(state: web::Data<AppState>, caller: CurrentUser) -> Result<HttpResponse, ApiError> {
    let user = state
        .store
        .users()
        .find_by_id(caller.id)
        .await
        .map_err(CallerLookup)?;
    Ok(HttpResponse::Ok().json(user))
}

/// Update your account.
///
/// `name`; `password` with `current_password`; `email` with
/// `current_password`. A password change ends every other session of the user
/// (the one of this access token goes on); an email change only mails a
/// confirmation link to the new address and answers 202.
#[utoipa::path(
    tag = "users",
    operation_id = "update_me",
    request_body = UserSelfPatch,
    responses(
        (status = 200, description = "Your account, updated", body = User),
        (status = 202, description = "Your account (name updated if asked); a link to confirm the new address is on its way to it", body = User),        (status = 401, response = Unauthorized),
        ServerErrors,
        JsonBodyErrors,
        (status = 429, response = TooManyPasswordChecks),
    )
)]
#[patch("/api/v1/users/me")]
pub async fn update_me(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: CurrentUser,
    body: ValidatedJson<UserSelfPatch>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    if input.password.is_some() || input.current_password.is_some() || input.email.is_some() {
        // A password check: under the auth limit of the client, like login.
        auth_limit(&req, &state).await?;
    }
    let new_email = input.new_email();
    if input.password.is_some() || new_email.is_some() {
        // Validation made sure that `current_password` came with them.
        let event = if input.password.is_some() {
            "password_change"
        } else {
            "email_change_request"
        };
        let current = input.current_password.as_deref().unwrap_or_default();
        check_current_password(&req, &state, caller.id, current, event).await?;
    }
    if let Some(change) = input.password_change() {
        let hash = state.passwords.hash(change.new).await?;
        let ended = state
            .store
            .users()
            .change_password(caller.id, &hash, caller.session_id)
            .await
            .map_err(CallerLookup)?;
        record_ending(&state, &ended, SessionEndReason::PasswordChange);
        log_attempt(&req, "password_change", "success", Some(caller.id));
    }
    let user = match &input.name {
        Some(name) => state.store.users().set_name(caller.id, name).await,
        None => state.store.users().find_by_id(caller.id).await,
    }
    .map_err(CallerLookup)?;
    let Some(new_email) = new_email else {
        return Ok(HttpResponse::Ok().json(user));
    };
    // The address changes only once the link mailed to it is used.
    if let Issued::Limited { retry_after_secs } =
        crate::account_mail::start_email_change(&state, &user, new_email).await?
    {
        log_attempt(
            &req,
            "email_change_request",
            "address_limited",
            Some(caller.id),
        );
        return Err(ApiError::RateLimited {
            retry_after: std::time::Duration::from_secs(retry_after_secs),
        });
    }
    log_attempt(&req, "email_change_request", "accepted", Some(caller.id));
    Ok(HttpResponse::Accepted().json(user))
}

/// Checks the caller's current password, under the account's throttle of
/// password checks: 422 on `current_password` when it is wrong.
async fn check_current_password(
    req: &HttpRequest,
    state: &AppState,
    user_id: UserId,
    current: &str,
    event: &'static str,
) -> Result<(), ApiError> {
    let credentials = state
        .store
        .users()
        .find_credentials_by_id(user_id)
        .await
        .map_err(CallerLookup)?;
    let account = credentials.user.email.to_string();
    let throttle = state.rate_limits.password_checks();
    if let Err(retry_after) = throttle.begin(&account).await {
        log_attempt(req, event, "throttled", Some(user_id));
        return Err(ApiError::RateLimited { retry_after });
    }
    let verification = state
        .passwords
        .verify(current, Some(&credentials.password_hash))
        .await?;
    if verification == Verification::Mismatch {
        log_attempt(req, event, "failure", Some(user_id));
        return Err(ApiError::invalid_field(
            "current_password",
            "incorrect",
            "is not your current password",
        ));
    }
    throttle.succeeded(&account).await;
    Ok(())
}

/// Counts the request against the client's auth limit (the middleware
/// counted it against the general one only: it cannot see the body).
async fn auth_limit(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let client = ClientIp::of_handled(req);
    let Some(client) = client else {
        return Ok(());
    };
    match state.rate_limits.check(client, Scope::AuthOnly).await {
        Some(Standing {
            retry_after: Some(retry_after),
            ..
        }) => Err(ApiError::RateLimited { retry_after }),
        _ => Ok(()),
    }
}

/// List users (admins).
///
/// Keyset pages in id (creation) order.
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size (default 20)"),
        ("cursor" = Option<String>, Query, min_length = 1, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of users, oldest first", body = Page<User>,
            headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page")),
            example = json!({
                "data": [{
                    "id": "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f",
                    "email": "ada@example.com",
                    "name": "Ada Lovelace",
                    "role": "user",
                    "email_verified": true,
                    "created_at": "2026-01-02T03:04:05.123456Z",
                    "updated_at": "2026-01-02T03:04:05.123456Z"
                }],
                "next_cursor": "eyJpZCI6IjAxOTM2ZjRlIn0"
            })),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[get("/api/v1/users")]
pub async fn list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    params: PageParams,
) -> Result<HttpResponse, ApiError> {
    let limit = u32::from(params.limit.get());
    let codec = &state.cursors.users;
    let after: Option<UserId> = params
        .cursor
        .as_deref()
        .map(|text| codec.decode(text))
        .transpose()?;
    let rows = state
        .store
        .users()
        .list(after, i64::from(limit) + 1)
        .await?;
    let slice = Slice::from_overfetch(rows, limit as usize, |user| user.id);
    let next_cursor = slice.next.map(|id| codec.encode(&id));
    Ok(page_response(slice.items, next_cursor, |cursor| {
        params.next_link("/api/v1/users", cursor)
    }))
}

/// `/users/{id}` never serves `/users/me`, whatever the method.
fn not_me(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.head().uri.path().trim_end_matches('/') != ME
}

fn parse_id(raw: &str) -> Result<UserId, ApiError> {
    raw.parse().map_err(|_| ApiError::path_id_not_uuid())
}

/// Get a user.
///
/// Admins, or the user themself; 404 otherwise.
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, response = BadRequest),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[get("/api/v1/users/{id}", guard = "not_me")]
pub async fn get_one(
    state: web::Data<AppState>,
    caller: CurrentUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    if id != caller.id && !caller.is_admin(&state).await? {
        return Err(ApiError::NotFound);
    }
    let user = state.store.users().find_by_id(id).await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Update a user (admins).
///
/// `role` and `name`; demoting the last admin is 409.
#[utoipa::path(
    tag = "users",
    operation_id = "update_user",
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user, updated", body = User),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 401, response = Unauthorized),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[patch("/api/v1/users/{id}", guard = "not_me")]
pub async fn update(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidatedJson<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let input = body.into_inner();
    let user = state
        .store
        .users()
        .update(
            id,
            &UserUpdate {
                role: input.role,
                name: input.name,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(user))
}

/// Delete a user (admins).
///
/// 204; the user's sessions end (their access tokens get 401 on every instance
/// within a second), and their projects and refresh tokens go too.
#[utoipa::path(
    tag = "users",
    operation_id = "delete_user",
    params(("id" = uuid::Uuid, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted, with their projects and sessions; their access tokens stop working"),
        (status = 400, response = BadRequest),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 401, response = Unauthorized),
        ServerErrors,
    )
)]
#[delete("/api/v1/users/{id}", guard = "not_me")]
pub async fn remove(
    state: web::Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let ended = state.store.users().delete_unless_last_admin(id).await?;
    record_ending(&state, &ended, SessionEndReason::UserDeleted);
    Ok(HttpResponse::NoContent().finish())
}
