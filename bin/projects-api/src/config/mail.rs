//! The `mail` section: what the mailer, the account flows and the links in
//! mail need, each part of its consumer's own type.

use std::time::Duration;

use projects_http::AccountsConfig;
use projects_mail::{MailError, Mailer, MailerConfig};

use super::env::{ConfigError, Env};

/// Mail, account recovery and verification.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `PUBLIC_APP_URL`: the front end the links point at, without a
    /// trailing slash.
    pub public_app_url: String,
    /// `SMTP_URL`, `MAIL_FROM`, `MAIL_DIR`: for the mail crate.
    pub mailer: MailerConfig,
    /// `REQUIRE_VERIFIED_EMAIL` and the token lifetimes: for the account
    /// routes and the worker's reset requests.
    pub accounts: AccountsConfig,
}

pub fn read(env: &Env<'_>) -> Result<MailConfig, ConfigError> {
    let config = MailConfig {
        public_app_url: public_app_url(env)?,
        mailer: MailerConfig {
            smtp_url: env.get("SMTP_URL"),
            from: env.or("MAIL_FROM", "no-reply@localhost"),
            dir: env.or("MAIL_DIR", "mail-outbox").into(),
        },
        accounts: AccountsConfig {
            require_verified_email: env.flag("REQUIRE_VERIFIED_EMAIL", false)?,
            password_reset_ttl: Duration::from_secs(
                env.positive("PASSWORD_RESET_TTL_MINUTES", 30)?
                    .saturating_mul(60),
            ),
            email_verification_ttl: Duration::from_secs(
                env.positive("EMAIL_VERIFICATION_TTL_HOURS", 48)?
                    .saturating_mul(3600),
            ),
            mail_limits: projects_store::MailLimits::default(),
        },
    };
    // The mailer checks the sender and the SMTP URL; nothing connects yet.
    Mailer::new(&config.mailer).map_err(|error| ConfigError {
        variable: match error {
            MailError::InvalidFrom(_) => "MAIL_FROM",
            _ => "SMTP_URL",
        },
        problem: format!("is not usable: {error}"),
    })?;
    Ok(config)
}

fn public_app_url(env: &Env<'_>) -> Result<String, ConfigError> {
    let url = env.or("PUBLIC_APP_URL", "http://127.0.0.1:8080");
    let url = url.trim().trim_end_matches('/').to_owned();
    let valid = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .is_some_and(|rest| {
            !rest.is_empty() && !rest.contains(['?', '#', ' ', '"', '<', '>', '\\'])
        });
    if !valid {
        return Err(ConfigError {
            variable: "PUBLIC_APP_URL",
            problem: format!(
                "must be an http(s) URL without query or fragment, like https://app.example.com, \
                 not {url:?}"
            ),
        });
    }
    Ok(url)
}
