//! The messages of the account flows: the tokens their links carry and
//! the outbox jobs that mail them (verification, email change, password
//! reset), and the worker's side of a password-reset request. No routes:
//! the handlers in `auth`, `accounts` and `users` call these.

use std::time::Duration;

use projects_auth::{AccountTokenKey, address_hash};
use projects_domain::{Email, User};
use projects_mail::{MAIL_ATTEMPTS, MAIL_JOB_KIND, MailJob, MailKind};
use projects_store::{Issued, NewAccountToken, NewJob, Store, StoreError, TokenPurpose};
use uuid::Uuid;

use crate::{AccountsConfig, AppState};

/// The job that turns a password-reset request into a message, if the
/// address has an account (run by the worker, see [`password_reset_job`]).
pub const PASSWORD_RESET_REQUEST_JOB_KIND: &str = "password_reset_request";

/// "30 minutes", "48 hours": a link's lifetime as the message says it.
fn in_words(duration: Duration) -> String {
    let minutes = duration.as_secs() / 60;
    match minutes {
        1 => "1 minute".into(),
        m if m % 60 != 0 || m < 60 => format!("{m} minutes"),
        60 => "1 hour".into(),
        m => format!("{} hours", m / 60),
    }
}

/// A new token: its random id (which the mail job carries) and what the
/// database stores.
fn new_token(
    key: &AccountTokenKey,
    purpose: TokenPurpose,
    new_email: Option<Email>,
    ttl: Duration,
) -> (Uuid, NewAccountToken) {
    let id = Uuid::new_v4();
    let token = NewAccountToken {
        token_hash: key.token(id).hash(),
        purpose,
        new_email,
        expires_at: time::OffsetDateTime::now_utc() + ttl,
    };
    (id, token)
}

/// The outbox job of one message.
pub(crate) fn mail_job(
    kind: MailKind,
    to: &Email,
    name: &str,
    token_id: Option<Uuid>,
    valid_for: Option<String>,
) -> NewJob {
    let payload = MailJob {
        kind,
        to: to.as_str().to_owned(),
        name: name.to_owned(),
        token_id,
        valid_for,
    };
    NewJob::new(
        MAIL_JOB_KIND,
        serde_json::to_value(payload).expect("a mail job serialises"),
        MAIL_ATTEMPTS,
    )
}

/// Stores an email-verification token for `user` and queues its message,
/// within the address's limits (registration uses its own transaction).
pub(crate) fn verification_token(
    key: &AccountTokenKey,
    config: &AccountsConfig,
) -> (Uuid, NewAccountToken) {
    new_token(
        key,
        TokenPurpose::EmailVerification,
        None,
        config.email_verification_ttl,
    )
}

/// The verification message of `user` for the token `token_id`.
pub(crate) fn verification_mail(user: &User, token_id: Uuid, config: &AccountsConfig) -> NewJob {
    mail_job(
        MailKind::EmailVerification,
        &user.email,
        &user.name,
        Some(token_id),
        Some(in_words(config.email_verification_ttl)),
    )
}

/// Starts an email change: a token for `new_email` and its message to that
/// address. `Limited` when the new address had its share of mail.
pub(crate) async fn start_email_change(
    state: &AppState,
    user: &User,
    new_email: Email,
) -> Result<Issued, StoreError> {
    let config = &state.accounts;
    let (token_id, token) = new_token(
        &state.account_tokens,
        TokenPurpose::EmailChange,
        Some(new_email.clone()),
        config.email_verification_ttl,
    );
    let mail = mail_job(
        MailKind::EmailChange,
        &new_email,
        &user.name,
        Some(token_id),
        Some(in_words(config.email_verification_ttl)),
    );
    state
        .store
        .account_tokens()
        .issue(
            user.id,
            &token,
            address_hash(new_email.as_str()),
            config.mail_limits,
            &mail,
        )
        .await
}

/// The worker's side of a password-reset request: if `email` has an
/// account, a reset token and its message, within the address's limits;
/// otherwise nothing. Nothing of the outcome is logged with the address.
pub async fn password_reset_job(
    store: &Store,
    key: &AccountTokenKey,
    config: &AccountsConfig,
    payload: &serde_json::Value,
) -> Result<(), StoreError> {
    let Some(email) = payload
        .get("email")
        .and_then(serde_json::Value::as_str)
        .and_then(|raw| Email::parse(raw).ok())
    else {
        tracing::warn!("a password-reset request job without a usable address");
        return Ok(());
    };
    let Some(user) = store
        .account_tokens()
        .find_user_by_email(email.as_str())
        .await?
    else {
        tracing::info!(
            auth.event = "password_reset_request",
            auth.outcome = "no_account",
            "password reset requested"
        );
        return Ok(());
    };
    let (token_id, token) = new_token(
        key,
        TokenPurpose::PasswordReset,
        None,
        config.password_reset_ttl,
    );
    let mail = mail_job(
        MailKind::PasswordReset,
        &user.email,
        &user.name,
        Some(token_id),
        Some(in_words(config.password_reset_ttl)),
    );
    let issued = store
        .account_tokens()
        .issue(
            user.id,
            &token,
            address_hash(user.email.as_str()),
            config.mail_limits,
            &mail,
        )
        .await?;
    let outcome = match issued {
        Issued::Queued => "queued",
        Issued::Limited { .. } => "address_limited",
    };
    tracing::info!(auth.event = "password_reset_request", auth.outcome = outcome, user.id = %user.id, "password reset requested");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_in_words() {
        assert_eq!(in_words(Duration::from_secs(30 * 60)), "30 minutes");
        assert_eq!(in_words(Duration::from_secs(60)), "1 minute");
        assert_eq!(in_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(in_words(Duration::from_secs(48 * 3600)), "48 hours");
        assert_eq!(in_words(Duration::from_secs(90 * 60)), "90 minutes");
    }
}
