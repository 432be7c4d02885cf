//! The configuration: one typed struct, read once from the environment and
//! validated at start. Nothing else in the project reads `std::env`.
//!
//! It comes in sections, one per consumer, each handed over whole: the
//! store gets `database` (its own `StoreConfig`), the http crate `http`
//! (its `HttpConfig`), the auth crate `tokens` (its `TokenConfig`), the
//! mailer and the account flows `mail`, the binary itself `server`. A
//! setting is declared once, as a field of its consumer's type, and read
//! once, by the line of its section's module that names its variable and
//! default.

mod database;
mod env;
mod http;
mod mail;
mod server;
#[cfg(test)]
mod tests;
mod tokens;

use projects_auth::TokenConfig;
use projects_http::HttpConfig;
use projects_store::StoreConfig;

pub use self::env::ConfigError;
pub use self::mail::MailConfig;
pub use self::server::{LogFormat, ServerConfig};
pub use self::{database::from_lookup as database_from_lookup, server::bind_addr_from_lookup};

/// Everything the server needs, from the environment. `Debug` shows no
/// secret (the database URLs, `JWT_SECRET`, `SMTP_URL`, `REDIS_URL`).
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub database: StoreConfig,
    pub http: HttpConfig,
    pub tokens: TokenConfig,
    pub mail: MailConfig,
}

impl Config {
    /// The configuration of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = env::Env::new(&lookup);
        Ok(Self {
            database: database::read(&env)?,
            tokens: tokens::read(&env)?,
            server: server::read(&env)?,
            http: http::read(&env)?,
            mail: mail::read(&env)?,
        })
    }
}
