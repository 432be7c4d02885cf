//! `CurrentUser`: the caller of an authenticated route, from `Authorization:
//! Bearer <jwt>`, verified without a database round trip: the signature and
//! claims, and that the token's session has not ended (a lookup in this
//! instance's set of ended sessions, see `revocations`). `AdminUser`: the
//! same, after the database confirmed that the caller is an admin *now*, so
//! that a demoted admin's unexpired token loses its rights at once.

use std::future::{Future, Ready, ready};
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
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
        .map(|value| visible_ascii(value).ok_or(TokenError::NotBearer))
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

/// The header's text when it is visible ASCII (or tabs), as
/// `HeaderValue::to_str` decides, eight bytes at a time: `to_str` looks at
/// the ~400 bytes of a token one by one (about 3,400 instructions).
fn visible_ascii(value: &HeaderValue) -> Option<&str> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0;
    let visible = |byte: &u8| (0x20..0x7f).contains(byte) || *byte == b'\t';
    let bytes = value.as_bytes();
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let word = u64::from_ne_bytes(eight);
        // A byte at or above 0x80, below 0x20, or DEL: look byte by byte.
        if (word & HIGH != 0 || below(word, 0x20) || below(word ^ (ONES * 0x7f), 1))
            && !word.to_ne_bytes().iter().all(visible)
        {
            return None;
        }
    }
    if !words.remainder().iter().all(visible) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any header bytes: the same decision and text as
        /// `HeaderValue::to_str`.
        #[test]
        fn fuzz_visible_ascii_decides_as_to_str(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
            proptest::prop_assert_eq!(visible_ascii(&value), value.to_str().ok());
        }

        /// The same for header-like text: mostly visible ASCII, now and
        /// then a tab, DEL, a control or a non-ASCII byte.
        #[test]
        fn fuzz_visible_ascii_decides_as_to_str_on_tokens(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    20 => 0x20_u8..0x7f,
                    1 => proptest::num::u8::ANY,
                    1 => proptest::strategy::Just(b'\t'),
                    1 => proptest::strategy::Just(0x7f_u8),
                ],
                0..80,
            )
        ) {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
            proptest::prop_assert_eq!(visible_ascii(&value), value.to_str().ok());
        }
    }
}
