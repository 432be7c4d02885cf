//! Account recovery and verification over email: password reset, email
//! verification (and its resend), and the confirmation of an email change.
//! Every message goes through the outbox (a job in the same transaction as
//! the token it carries), and every token is single use, stored as a hash,
//! and 400 `invalid-token` when unknown, used, expired or tampered with.
//!
//! A password-reset request only queues a job holding the address: the
//! worker looks the account up and mails the link. The request therefore
//! does the same work (one insert) whether or not the account exists, and
//! its answer and its timing cannot tell them apart.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, post, web};
use projects_auth::{AccountToken, address_hash};
use projects_domain::inputs::{PasswordResetConfirm, PasswordResetRequest, TokenConfirm};
use projects_domain::{SessionEndReason, User};
use projects_mail::{MAIL_ATTEMPTS, MailKind};
use projects_store::{Issued, NewJob};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::account_mail::{
    PASSWORD_RESET_REQUEST_JOB_KIND, mail_job, verification_mail, verification_token,
};
use crate::audit::log_attempt;
use crate::auth::{Session, start_session};
use crate::error::CallerLookup;
use crate::extract::{CurrentUser, ValidatedJson};
use crate::problem_responses::{
    Conflict, InvalidAccountToken, JsonBodyErrors, ServerErrors, TooManyRequests, Unauthorized,
};
use crate::sessions::record_ending;
use crate::{ApiError, AppState};

/// The one answer to a password-reset request, whoever asked.
const RESET_ACCEPTED: &str =
    "if an account has this address, a link to choose a new password is on its way";

/// A request that was accepted; whatever follows happens by mail.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({ "message": RESET_ACCEPTED }))]
pub struct Accepted {
    message: &'static str,
}

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(request_password_reset)
        .service(confirm_password_reset)
        .service(verify_email)
        .service(resend_verification)
        .service(confirm_email_change);
}

/// Ask for a password reset link.
///
/// 202 whether or not the address has an account; if it has, a link
/// `{PUBLIC_APP_URL}/reset-password?token=…` is mailed to it (at most one a
/// minute, five an hour).
#[utoipa::path(
    tag = "auth",
    operation_id = "request_password_reset",
    security(()),
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted; the same answer whether or not the address has an account", body = Accepted),
        ServerErrors,
        JsonBodyErrors,
    )
)]
#[post("/api/v1/auth/password-reset")]
pub async fn request_password_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<PasswordResetRequest>,
) -> Result<HttpResponse, ApiError> {
    let email = body
        .into_inner()
        .parsed_email()
        .map_err(|error| ApiError::invalid_field("email", "email", error.to_string()))?;
    let job = NewJob::new(
        PASSWORD_RESET_REQUEST_JOB_KIND,
        serde_json::json!({ "email": email.as_str() }),
        MAIL_ATTEMPTS,
    );
    state.store.jobs().enqueue(&job).await?;
    log_attempt(&req, "password_reset_request", "accepted", None);
    Ok(HttpResponse::Accepted().json(Accepted {
        message: RESET_ACCEPTED,
    }))
}

/// Set a new password with a reset link's token.
///
/// Sets the new password, ends every session of the user, and starts a new
/// one: 200 `{user, tokens}`.
#[utoipa::path(
    tag = "auth",
    operation_id = "confirm_password_reset",
    security(()),
    request_body = PasswordResetConfirm,
    responses(
        (status = 200, description = "The password is changed; every other session is ended; a new one starts", body = Session),
        ServerErrors,
        JsonBodyErrors,
        // After `JsonBodyErrors`, whose 400 it replaces (one per status).
        (status = 400, response = InvalidAccountToken),
    )
)]
#[post("/api/v1/auth/password-reset/confirm")]
pub async fn confirm_password_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<PasswordResetConfirm>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let token = AccountToken::from_client(input.token.unwrap_or_default());
    // Hashed before the token is consumed, so that no transaction waits
    // on argon2.
    let password_hash = state
        .passwords
        .hash(input.password.as_deref().unwrap_or_default())
        .await?;
    let (user, ended) = match state
        .store
        .account_tokens()
        .reset_password(token.hash(), &password_hash)
        .await
    {
        Ok(reset) => reset,
        Err(error) => {
            log_attempt(&req, "password_reset", "invalid_token", None);
            return Err(error.into());
        }
    };
    // This instance and the others (through Redis) refuse the ended
    // sessions' access tokens at once.
    record_ending(&state, &ended, SessionEndReason::PasswordReset);
    // The link proved the address; earlier failed logins no longer count.
    state
        .rate_limits
        .password_checks()
        .succeeded(user.email.as_str())
        .await;
    let tokens = start_session(&state, &req, &user).await?;
    log_attempt(&req, "password_reset", "success", Some(user.id));
    Ok(HttpResponse::Ok().json(Session::new(user, tokens)))
}

/// Verify an e-mail address with a link's token.
///
/// The address is verified: 200 with the user.
#[utoipa::path(
    tag = "auth",
    operation_id = "verify_email",
    security(()),
    request_body = TokenConfirm,
    responses(
        (status = 200, description = "The address is verified", body = User),
        ServerErrors,
        JsonBodyErrors,
        // After `JsonBodyErrors`, whose 400 it replaces (one per status).
        (status = 400, response = InvalidAccountToken),
    )
)]
#[post("/api/v1/auth/verify-email")]
pub async fn verify_email(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<TokenConfirm>,
) -> Result<HttpResponse, ApiError> {
    let token = AccountToken::from_client(body.into_inner().token.unwrap_or_default());
    let user = state
        .store
        .account_tokens()
        .verify_email(token.hash())
        .await
        .map_err(ApiError::from)
        .inspect_err(|_| log_attempt(&req, "verify_email", "invalid_token", None))?;
    log_attempt(&req, "verify_email", "success", Some(user.id));
    Ok(HttpResponse::Ok().json(user))
}

/// Mail a new verification link.
///
/// A new link, if the address is not verified yet (the older links stop
/// working): 202.
#[utoipa::path(
    tag = "auth",
    operation_id = "resend_verification",
    responses(
        (status = 202, description = "A new link is on its way (nothing is sent when the address is verified already)", body = Accepted),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
        ServerErrors,
    )
)]
#[post("/api/v1/auth/verify-email/resend")]
pub async fn resend_verification(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: CurrentUser,
) -> Result<HttpResponse, ApiError> {
    let user = state
        .store
        .users()
        .find_by_id(caller.id)
        .await
        .map_err(CallerLookup)?;
    if !user.email_verified {
        let (token_id, token) = verification_token(&state.account_tokens, &state.accounts);
        let mail = verification_mail(&user, token_id, &state.accounts);
        let issued = state
            .store
            .account_tokens()
            .issue(
                user.id,
                &token,
                address_hash(user.email.as_str()),
                state.accounts.mail_limits,
                &mail,
            )
            .await?;
        if let Issued::Limited { retry_after_secs } = issued {
            log_attempt(
                &req,
                "verify_email_resend",
                "address_limited",
                Some(user.id),
            );
            return Err(ApiError::RateLimited {
                retry_after: Duration::from_secs(retry_after_secs),
            });
        }
    }
    log_attempt(&req, "verify_email_resend", "accepted", Some(user.id));
    Ok(HttpResponse::Accepted().json(Accepted {
        message: "if the address is not verified yet, a new link is on its way",
    }))
}

/// Confirm an e-mail change with a link's token.
///
/// The new address becomes the account's, verified; the old address gets a
/// notice: 200 with the user. 409 when the new address was taken in the
/// meantime (the link stays usable).
#[utoipa::path(
    tag = "auth",
    operation_id = "confirm_email_change",
    security(()),
    request_body = TokenConfirm,
    responses(
        (status = 200, description = "The new address is the account's, verified", body = User),
        (status = 409, response = Conflict),
        ServerErrors,
        JsonBodyErrors,
        // After `JsonBodyErrors`, whose 400 it replaces (one per status).
        (status = 400, response = InvalidAccountToken),
    )
)]
#[post("/api/v1/auth/email-change/confirm")]
pub async fn confirm_email_change(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: ValidatedJson<TokenConfirm>,
) -> Result<HttpResponse, ApiError> {
    let token = AccountToken::from_client(body.into_inner().token.unwrap_or_default());
    let changed = state
        .store
        .account_tokens()
        .change_email(token.hash(), |before| {
            mail_job(
                MailKind::EmailChanged,
                &before.email,
                &before.name,
                None,
                None,
            )
        })
        .await;
    let user = changed
        .map_err(ApiError::from)
        .inspect_err(|_| log_attempt(&req, "email_change", "refused", None))?;
    log_attempt(&req, "email_change", "success", Some(user.id));
    Ok(HttpResponse::Ok().json(user))
}
