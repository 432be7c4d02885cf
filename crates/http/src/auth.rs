//! `/api/v1/auth/*`: register, login, refresh, logout. Every attempt is
//! logged with its outcome, the user id when known, the client IP and the
//! request id — never the e-mail, the password or a token.
//!
//! A login or registration starts a session; refresh rotates its token
//! (a duplicate within the reuse grace gets the same successor; a reuse
//! after it ends the session); logout ends it.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use projects_auth::{RefreshToken, Verification};
use projects_domain::inputs::{Login, RefreshRequest, Registration};
use projects_domain::{Role, SessionEndReason, SessionId, User};
use projects_store::{NewSession, NewUser, Rotation, StoreError};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::audit::log_attempt;
use crate::client_ip::ClientIp;
use crate::extract::ValidatedJson;
use crate::problem_responses::{
    Conflict, EmailNotVerified, JsonBodyErrors, ServerErrors, TooManyPasswordChecks, Unauthorized,
};
use crate::sessions::record_ending;
use crate::{ApiError, AppState};

/// The one message for a failed login, whatever failed.
const BAD_CREDENTIALS: &str = "the e-mail address or the password is incorrect";
/// The one message for an unusable refresh token, whatever was wrong.
const BAD_REFRESH_TOKEN: &str = "the refresh token is invalid, expired or revoked";

/// The tokens object of the contract.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(description = "An access token and the refresh token that renews it.", example = json!({
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzNmY0ZSJ9.c2lnbmF0dXJl",
    "refresh_token": "hV3tq0nJ7cY2mWlq1XbS9e4Kd8ZrPfA6uGoT5iLsNyE",
    "token_type": "Bearer",
    "expires_in": 900
}))]
pub struct Tokens {
    /// A JWT for `Authorization: Bearer …`.
    pub access_token: String,
    /// An opaque token for `POST /api/v1/auth/refresh` and `/logout`;
    /// it works once.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = bearer_only)]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(minimum = 0, example = 900)]
    pub expires_in: u64,
}

/// The schema of `token_type`: the one value `Bearer`, as an enum (utoipa 5
/// has no `const`), so that typed clients get a literal type.
fn bearer_only() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some("Always `Bearer`."))
        .enum_values(Some(["Bearer"]))
        .build()
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// A new session: the user and their tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "user": {
        "id": "01936f4e-8d2a-7b3c-9e1f-2a3b4c5d6e7f",
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "role": "user",
        "email_verified": true,
        "created_at": "2026-01-02T03:04:05.123456Z",
        "updated_at": "2026-01-02T03:04:05.123456Z"
    },
    "tokens": {
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzNmY0ZSJ9.c2lnbmF0dXJl",
        "refresh_token": "hV3tq0nJ7cY2mWlq1XbS9e4Kd8ZrPfA6uGoT5iLsNyE",
        "token_type": "Bearer",
        "expires_in": 900
    }
}))]
pub struct Session {
    user: User,
    tokens: Tokens,
}

impl Session {
    pub(crate) fn new(user: User, tokens: Tokens) -> Self {
        Self { user, tokens }
    }
}

/// Rotated tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "tokens": {
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIwMTkzNmY0ZSJ9.c2lnbmF0dXJl",
        "refresh_token": "hV3tq0nJ7cY2mWlq1XbS9e4Kd8ZrPfA6uGoT5iLsNyE",
        "token_type": "Bearer",
        "expires_in": 900
    }
}))]
pub struct Refreshed {
    tokens: Tokens,
}

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout);
}

/// The longest `User-Agent` a session keeps, in characters.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Starts a session for `user` (where and with what it started, from the
/// request) and returns its first tokens.
pub(crate) async fn start_session(
    state: &AppState,
    req: &HttpRequest,
    user: &User,
) -> Result<Tokens, ApiError> {
    let first = RefreshToken::generate();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|agent| !agent.trim().is_empty());
    // The address the logs and limits use; none for an unknown peer.
    let ip = ClientIp::of_handled(req).filter(|ip| !ip.is_unspecified());
    let session = state
        .store
        .sessions()
        .start(
            &NewSession {
                user_id: user.id,
                first_token_hash: first.hash().0,
                user_agent,
                ip,
            },
            &state.config.sessions,
        )
        .await?;
    tokens_for(state, user, session, first)
}

fn tokens_for(
    state: &AppState,
    user: &User,
    session: SessionId,
    refresh_token: RefreshToken,
) -> Result<Tokens, ApiError> {
    let access = state.tokens.issue(user, session)?;
    Ok(Tokens {
        access_token: access.token,
        refresh_token: refresh_token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: access.expires_in,
    })
}

/// Register a user.
///
/// 201 `{user, tokens}`: the new user and the tokens of their first session;
/// 409 when the e-mail is taken in any letter case.
#[utoipa::path(
    tag = "auth",
    operation_id = "register",
    security(()),
    request_body = Registration,
    responses(
        (status = 201, description = "Registered, with a first session", body = Session,
            headers(("Location" = String, description = "The new user: `/api/v1/users/{id}`"))),
        (status = 409, response = Conflict),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[post("/api/v1/auth/register")]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<Registration>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let email = input
        .parsed_email()
        .map_err(|error| ApiError::invalid_field("email", "email", error.to_string()))?;
    let password_hash = state
        .passwords
        .hash(input.password.as_deref().unwrap_or_default())
        .await?;
    let new_user = NewUser {
        email,
        name: input.name.unwrap_or_default(),
        role: Role::User,
        password_hash,
    };
    // The user, their verification link and its message: one transaction.
    let (token_id, token) =
        crate::account_mail::verification_token(&state.account_tokens, &state.accounts);
    let registered = state
        .store
        .account_tokens()
        .register(&new_user, &token, |user| {
            crate::account_mail::verification_mail(user, token_id, &state.accounts)
        })
        .await;
    let user = match registered {
        Ok(user) => user,
        Err(StoreError::Conflict { .. }) => {
            log_attempt(&req, "register", "email_taken", None);
            return Err(ApiError::Conflict(
                "an account with this e-mail address already exists".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    };
    let tokens = start_session(&state, &req, &user).await?;
    log_attempt(&req, "register", "success", Some(user.id));
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .json(Session { user, tokens }))
}

/// Log in.
///
/// 200 `{user, tokens}`: a new session; 401 with one body for an unknown
/// e-mail and a wrong password, which both cost one argon2 verification.
/// Password checks of one address are throttled, known or not (429 with
/// `Retry-After`, see `PasswordChecks`).
#[utoipa::path(
    tag = "auth",
    operation_id = "login",
    security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Logged in: a new session", body = Session),
        (status = 401, response = Unauthorized),
        (status = 403, response = EmailNotVerified),
        ServerErrors,
        JsonBodyErrors,
        (status = 429, response = TooManyPasswordChecks),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<Login>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let email = input
        .email
        .as_deref()
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    let password = input.password.as_deref().unwrap_or_default();
    if let Err(retry_after) = state.rate_limits.password_checks().begin(&email).await {
        log_attempt(&req, "login", "throttled", None);
        return Err(ApiError::RateLimited { retry_after });
    }
    let credentials = state
        .store
        .users()
        .find_credentials_by_email(&email)
        .await?;
    let verification = state
        .passwords
        .verify(
            password,
            credentials
                .as_ref()
                .map(|found| found.password_hash.as_str()),
        )
        .await?;
    let known_user = credentials.as_ref().map(|found| found.user.id);
    let (Verification::Match { rehashed }, Some(credentials)) = (verification, credentials) else {
        log_attempt(&req, "login", "failure", known_user);
        return Err(ApiError::InvalidCredentials(BAD_CREDENTIALS));
    };
    state.rate_limits.password_checks().succeeded(&email).await;
    let user = credentials.user;
    if state.accounts.require_verified_email && !user.email_verified {
        log_attempt(&req, "login", "email_not_verified", Some(user.id));
        return Err(ApiError::EmailNotVerified);
    }
    if let Some(rehashed) = rehashed
        && let Err(error) = state
            .store
            .users()
            .rehash_password(user.id, &rehashed)
            .await
    {
        // The login itself is fine; the next one retries the upgrade.
        tracing::warn!(user.id = %user.id, error = ?error, "could not upgrade a password hash");
    }
    let tokens = start_session(&state, &req, &user).await?;
    log_attempt(&req, "login", "success", Some(user.id));
    Ok(HttpResponse::Ok().json(Session { user, tokens }))
}

/// Rotate the tokens.
///
/// 200 `{tokens}`; the presented refresh token stops working. Presented again
/// within the reuse grace, it gets the same new refresh token (while that one
/// is unused; else 401, ending nothing); after the grace, it ends its session
/// (401).
#[utoipa::path(
    tag = "auth",
    operation_id = "refresh",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token stops working. \
            The same token presented again within `REFRESH_REUSE_GRACE_SECONDS` (two tabs, a retry) \
            gets the same new refresh token", body = Refreshed),
        (status = 401, response = Unauthorized),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = RefreshToken::from_client(body.into_inner().refresh_token.unwrap_or_default());
    let successor = state.successors.successor(&presented);
    let rotation = state
        .store
        .sessions()
        .rotate(
            presented.hash().0,
            successor.hash().0,
            &state.config.sessions,
        )
        .await?;
    match rotation {
        Rotation::Rotated { user, session } => {
            let tokens = tokens_for(&state, &user, session, successor)?;
            log_attempt(&req, "refresh", "success", Some(user.id));
            Ok(HttpResponse::Ok().json(Refreshed { tokens }))
        }
        Rotation::Duplicate { user, session } => {
            let tokens = tokens_for(&state, &user, session, successor)?;
            log_attempt(&req, "refresh", "duplicate", Some(user.id));
            Ok(HttpResponse::Ok().json(Refreshed { tokens }))
        }
        Rotation::Reused { user_id, ended } => {
            record_ending(&state, &ended, SessionEndReason::Reuse);
            tracing::warn!(user.id = %user_id, "a used refresh token was presented again after the grace: its session is ended");
            log_attempt(&req, "refresh", "reused", Some(user_id));
            Err(ApiError::InvalidCredentials(BAD_REFRESH_TOKEN))
        }
        Rotation::Invalid => {
            log_attempt(&req, "refresh", "failure", None);
            Err(ApiError::InvalidCredentials(BAD_REFRESH_TOKEN))
        }
    }
}

/// Log out.
///
/// Ends the session of the refresh token (used or not); 204 whatever the token
/// (idempotent).
#[utoipa::path(
    tag = "auth",
    operation_id = "logout",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The token's session is ended (also when it already was): \
            none of its refresh tokens works any more, and its access tokens get 401"),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let presented = RefreshToken::from_client(body.into_inner().refresh_token.unwrap_or_default());
    let ended = state
        .store
        .sessions()
        .end_by_token(presented.hash().0, SessionEndReason::Logout)
        .await?;
    record_ending(&state, &ended, SessionEndReason::Logout);
    log_attempt(
        &req,
        "logout",
        if ended.is_empty() {
            "no_session"
        } else {
            "success"
        },
        None,
    );
    Ok(HttpResponse::NoContent().finish())
}
