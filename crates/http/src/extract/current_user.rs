//! `CurrentUser`: the caller of an authenticated route, from `Authorization:
//! Bearer <jwt>`, verified without a database round trip: the signature and
//! claims, and that the token's session has not ended (a lookup in this
//! instance's set of ended sessions, see `revocations`). `AdminUser`: the
//! same, after the database confirmed that the caller is an admin *now*, so
//! that a demoted admin's unexpired token loses its rights at once.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use projects_auth::{AccessClaims, TokenError, bearer_token};
use projects_domain::{Email, Role, SessionId, User, UserId};
use projects_store::StoreError;

use crate::error::CallerLookup;
use crate::{ApiError, AppState};

/// Whom the access token speaks for. `role` is the role when the token was
/// issued: for decisions that must follow a demotion at once, use
/// [`AdminUser`] or [`CurrentUser::current_role`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: UserId,
    pub email: Email,
    pub role: Role,
    /// The session the access token belongs to (`sid`).
    pub session_id: SessionId,
}

impl CurrentUser {
    /// The caller's role as the database has it now. A user deleted since
    /// the token was issued is refused (401).
    pub async fn current_role(&self, state: &AppState) -> Result<Role, ApiError> {
        let user = state
            .store
            .users()
            .find_by_id(self.id)
            .await
            .map_err(CallerLookup)?;
        Ok(user.role)
    }

    /// Whether the caller is an admin now (database check).
    pub async fn is_admin(&self, state: &AppState) -> Result<bool, ApiError> {
        Ok(self.current_role(state).await? == Role::Admin)
    }
}

impl From<AccessClaims> for CurrentUser {
    fn from(claims: AccessClaims) -> Self {
        Self {
            id: claims.user_id,
            email: claims.email,
            role: claims.role,
            session_id: claims.session_id,
        }
    }
}

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::Internal("AppState is not registered".into()))
}

fn authenticate(req: &HttpRequest) -> Result<CurrentUser, ApiError> {
    let state = state_of(req)?;
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|value| value.to_str().map_err(|_| TokenError::NotBearer))
        .transpose();
    let token = header.and_then(bearer_token).map_err(token_error)?;
    let claims = state.tokens.verify(token).map_err(token_error)?;
    if state.revocations.is_ended(&claims.session_id) {
        return Err(ApiError::InvalidToken(
            "the session of this access token has ended",
        ));
    }
    Ok(claims.into())
}

fn token_error(error: TokenError) -> ApiError {
    ApiError::InvalidToken(error.message())
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(authenticate(req))
    }
}

/// An admin caller, confirmed against the database; non-admins get 403.
/// Holds the caller as the database has them.
#[derive(Debug, Clone)]
pub struct AdminUser(pub User);

impl FromRequest for AdminUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let caller = authenticate(req);
        let state = state_of(req);
        Box::pin(async move {
            let caller = caller?;
            let state = state?;
            let user = match state.store.users().find_by_id(caller.id).await {
                Ok(user) => user,
                Err(StoreError::NotFound) => {
                    return Err(ApiError::InvalidToken(
                        "the user of this access token no longer exists",
                    ));
                }
                Err(error) => return Err(error.into()),
            };
            if user.role != Role::Admin {
                return Err(ApiError::Forbidden);
            }
            Ok(AdminUser(user))
        })
    }
}
