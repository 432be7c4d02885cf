//! `/api/v1/auth/*`: register, login, refresh, logout. Every attempt is
//! logged with its outcome, the user id when known, the client IP and the
//! request id — never the e-mail, the password or a token.

use actix_web::{HttpRequest, HttpResponse, post, web};
use projects_auth::{RefreshToken, Verification};
use projects_domain::inputs::{Login, RefreshRequest, Registration};
use projects_domain::{Role, User, UserId};
use projects_store::{NewRefreshToken, NewUser, Rotation, StoreError};
use serde::Serialize;
use uuid::Uuid;

use crate::client_ip::ClientIp;
use crate::extract::ValidatedJson;
use crate::openapi::{
    Conflict, EmailNotVerified, JsonBodyErrors, ServerErrors, TooManyPasswordChecks, Unauthorized,
};
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
    #[schema(value_type = String, example = "Bearer", pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(minimum = 0, example = 900)]
    pub expires_in: u64,
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

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout);
}

/// Logs one authentication attempt.
pub(crate) fn log_attempt(
    req: &HttpRequest,
    event: &'static str,
    outcome: &'static str,
    user_id: Option<UserId>,
) {
    // The address the limits used, decided once for the request (never a
    // header the client chose, unless through a trusted proxy).
    let client_ip = ClientIp::of_handled(req);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()));
    tracing::info!(
        auth.event = event,
        auth.outcome = outcome,
        user.id = user_id.map(|id| id.to_string()),
        client.ip = client_ip.map(tracing::field::display),
        request_id,
        "authentication attempt"
    );
}

/// A new access token and a new refresh token in `family_id`.
pub(crate) async fn start_session(state: &AppState, user: &User) -> Result<Tokens, ApiError> {
    let new_token = RefreshToken::generate();
    state
        .store
        .refresh_tokens()
        .insert(&NewRefreshToken {
            user_id: user.id,
            family_id: Uuid::now_v7(),
            token_hash: new_token.hash().0,
            expires_at: refresh_expiry(state),
        })
        .await?;
    tokens_for(state, user, new_token)
}

fn tokens_for(
    state: &AppState,
    user: &User,
    refresh_token: RefreshToken,
) -> Result<Tokens, ApiError> {
    let access = state.tokens.issue(user)?;
    Ok(Tokens {
        access_token: access.token,
        refresh_token: refresh_token.expose().to_owned(),
        token_type: "Bearer",
        expires_in: access.expires_in,
    })
}

fn refresh_expiry(state: &AppState) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + state.tokens.config().refresh_ttl
}

/// `POST /api/v1/auth/register`: 201 `{user, tokens}`; 409 when the e-mail
/// is taken in any letter case.
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
        crate::accounts::verification_token(&state.account_tokens, &state.accounts);
    let registered = state
        .store
        .account_tokens()
        .register(&new_user, &token, |user| {
            crate::accounts::verification_mail(user, token_id, &state.accounts)
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
    let tokens = start_session(&state, &user).await?;
    log_attempt(&req, "register", "success", Some(user.id));
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/api/v1/users/{}", user.id)))
        .json(Session { user, tokens }))
}

/// `POST /api/v1/auth/login`: 200 `{user, tokens}`; 401 with one body for
/// an unknown e-mail and a wrong password, which both cost one argon2
/// verification. Password checks of one address are throttled, known or
/// not (429 with `Retry-After`, see `PasswordChecks`).
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
    let tokens = start_session(&state, &user).await?;
    log_attempt(&req, "login", "success", Some(user.id));
    Ok(HttpResponse::Ok().json(Session { user, tokens }))
}

/// `POST /api/v1/auth/refresh`: 200 `{tokens}`; the presented token stops
/// working. A token presented twice revokes its whole family (401).
#[utoipa::path(
    tag = "auth",
    operation_id = "refresh",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token stops working", body = Refreshed),
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
    let replacement = RefreshToken::generate();
    let rotation = state
        .store
        .refresh_tokens()
        .rotate(
            presented.hash().0,
            replacement.hash().0,
            refresh_expiry(&state),
        )
        .await?;
    match rotation {
        Rotation::Rotated { user } => {
            let tokens = tokens_for(&state, &user, replacement)?;
            log_attempt(&req, "refresh", "success", Some(user.id));
            Ok(HttpResponse::Ok().json(Refreshed { tokens }))
        }
        Rotation::Reused { user_id } => {
            tracing::warn!(user.id = %user_id, "a used refresh token was presented again: its family is revoked");
            log_attempt(&req, "refresh", "reused", Some(user_id));
            Err(ApiError::InvalidCredentials(BAD_REFRESH_TOKEN))
        }
        Rotation::Invalid => {
            log_attempt(&req, "refresh", "failure", None);
            Err(ApiError::InvalidCredentials(BAD_REFRESH_TOKEN))
        }
    }
}

/// `POST /api/v1/auth/logout`: revokes the token's family; 204 whatever
/// the token (idempotent).
#[utoipa::path(
    tag = "auth",
    operation_id = "logout",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "The token's family is revoked (also when it already was)"),
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
    let revoked = state
        .store
        .refresh_tokens()
        .revoke_family_of(presented.hash().0)
        .await?;
    log_attempt(
        &req,
        "logout",
        if revoked > 0 { "success" } else { "no_session" },
        None,
    );
    Ok(HttpResponse::NoContent().finish())
}
