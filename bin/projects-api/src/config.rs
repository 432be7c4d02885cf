//! The configuration: one typed struct, read once from the environment and
//! validated at start. Nothing else in the project reads `std::env`.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use projects_http::client_ip::{Cidr, TrustedProxies};
use secrecy::{ExposeSecret as _, SecretString};

/// A variable that is missing or unusable; the message names it.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.variable, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Log output: JSON lines for machines, or coloured text for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where the database is and how to use it.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    pub url: SecretString,
    pub pool_size: usize,
    pub timeout: Duration,
    pub slow_query: Duration,
    /// `DATABASE_PREPARED_STATEMENTS`: false sends unnamed statements
    /// only, for a transaction-pooling proxy (PgBouncer before 1.21).
    pub prepared_statements: bool,
    /// `DATABASE_MIGRATION_URL`: the direct connection for migrations and
    /// their lock; `None`: `url`.
    pub migration_url: Option<SecretString>,
}

/// Mail, account recovery and verification (`PUBLIC_APP_URL`, `SMTP_URL`,
/// `MAIL_FROM`, `MAIL_DIR`, `REQUIRE_VERIFIED_EMAIL`, the token lifetimes).
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The front end the links point at, without a trailing slash.
    pub public_app_url: String,
    /// `None`: `.eml` files into `dir`.
    pub smtp_url: Option<SecretString>,
    pub from: String,
    pub dir: std::path::PathBuf,
    pub require_verified_email: bool,
    pub password_reset_ttl: Duration,
    /// Also the lifetime of an email-change link.
    pub email_verification_ttl: Duration,
}

impl MailConfig {
    /// What the account routes (and the worker's reset requests) need.
    pub fn accounts_config(&self) -> projects_http::AccountsConfig {
        projects_http::AccountsConfig {
            password_reset_ttl: self.password_reset_ttl,
            email_verification_ttl: self.email_verification_ttl,
            require_verified_email: self.require_verified_email,
            mail_limits: projects_store::MailLimits::default(),
        }
    }

    /// What the mail crate needs.
    pub fn mailer_config(&self) -> projects_mail::MailerConfig {
        projects_mail::MailerConfig {
            smtp_url: self
                .smtp_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
            from: self.from.clone(),
            dir: self.dir.clone(),
        }
    }
}

fn mail<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<MailConfig, ConfigError> {
    let public_app_url = env
        .get("PUBLIC_APP_URL")
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let public_app_url = public_app_url.trim().trim_end_matches('/').to_owned();
    let valid_url = public_app_url
        .strip_prefix("https://")
        .or_else(|| public_app_url.strip_prefix("http://"))
        .is_some_and(|rest| {
            !rest.is_empty() && !rest.contains(['?', '#', ' ', '"', '<', '>', '\\'])
        });
    if !valid_url {
        return Err(ConfigError {
            variable: "PUBLIC_APP_URL",
            problem: format!(
                "must be an http(s) URL without query or fragment, like https://app.example.com, \
                 not {public_app_url:?}"
            ),
        });
    }
    let config = MailConfig {
        public_app_url,
        smtp_url: env.get("SMTP_URL").map(SecretString::from),
        from: env
            .get("MAIL_FROM")
            .unwrap_or_else(|| "no-reply@localhost".into()),
        dir: env
            .get("MAIL_DIR")
            .unwrap_or_else(|| "mail-outbox".into())
            .into(),
        require_verified_email: env.flag("REQUIRE_VERIFIED_EMAIL", false)?,
        password_reset_ttl: Duration::from_secs(
            positive(env, "PASSWORD_RESET_TTL_MINUTES", 30)?.saturating_mul(60),
        ),
        email_verification_ttl: Duration::from_secs(
            positive(env, "EMAIL_VERIFICATION_TTL_HOURS", 48)?.saturating_mul(3600),
        ),
    };
    // The mailer checks the sender and the SMTP URL; nothing connects yet.
    projects_mail::Mailer::new(&config.mailer_config()).map_err(|error| {
        let variable = match error {
            projects_mail::MailError::InvalidFrom(_) => "MAIL_FROM",
            _ => "SMTP_URL",
        };
        ConfigError {
            variable,
            problem: format!("is not usable: {error}"),
        }
    })?;
    Ok(config)
}

/// Abuse resistance: whom to believe about the client's address, and how
/// long a Redis call may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbuseConfig {
    /// `TRUSTED_PROXIES`, plus the loopback and private ranges when
    /// `TRUST_FORWARDED_FOR=true`.
    pub trusted_proxies: Vec<Cidr>,
    /// `REDIS_TIMEOUT_MS` (default 50).
    pub redis_timeout: Duration,
    /// `CLIENT_TIMEOUT_SECONDS` (default 10): how long a client may take to
    /// send a request head or body, or to start its next request.
    pub client_timeout: Duration,
}

fn abuse<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<AbuseConfig, ConfigError> {
    let mut trusted_proxies = match env.get("TRUSTED_PROXIES") {
        None => Vec::new(),
        Some(raw) => TrustedProxies::parse_list(&raw).map_err(|problem| ConfigError {
            variable: "TRUSTED_PROXIES",
            problem: format!("must be comma-separated CIDRs like 10.0.0.0/8: {problem}"),
        })?,
    };
    if env.flag("TRUST_FORWARDED_FOR", false)? {
        trusted_proxies.extend(TrustedProxies::loopback_and_private());
    }
    Ok(AbuseConfig {
        trusted_proxies,
        redis_timeout: Duration::from_millis(positive(env, "REDIS_TIMEOUT_MS", 50)?),
        client_timeout: Duration::from_secs(positive(env, "CLIENT_TIMEOUT_SECONDS", 10)?),
    })
}

/// How long sessions live, and the refresh-token reuse grace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionsConfig {
    /// `SESSION_MAX_AGE_DAYS`: the absolute limit from a session's start.
    pub max_age: Duration,
    /// `REFRESH_TOKEN_TTL_DAYS`: the idle limit (a refresh renews it, up
    /// to the absolute limit).
    pub idle_ttl: Duration,
    /// `REFRESH_REUSE_GRACE_SECONDS`: a rotated token presented again
    /// within this long is a benign duplicate, later it is reuse.
    pub reuse_grace: Duration,
}

/// The longest session limit accepted, in days (ten years).
const MAX_SESSION_DAYS: u64 = 3650;
/// The longest reuse grace accepted, in seconds: beyond a few minutes a
/// "duplicate" is a stolen token.
const MAX_REUSE_GRACE_SECONDS: u64 = 300;

fn sessions<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<SessionsConfig, ConfigError> {
    let days = |name: &'static str, default: u64| -> Result<Duration, ConfigError> {
        match positive(env, name, default)? {
            value if value > MAX_SESSION_DAYS => Err(ConfigError {
                variable: name,
                problem: format!("must be at most {MAX_SESSION_DAYS} days, not {value}"),
            }),
            value => Ok(Duration::from_secs(value * 24 * 60 * 60)),
        }
    };
    let grace = env.parsed("REFRESH_REUSE_GRACE_SECONDS", 10u64)?;
    if grace > MAX_REUSE_GRACE_SECONDS {
        return Err(ConfigError {
            variable: "REFRESH_REUSE_GRACE_SECONDS",
            problem: format!(
                "must be at most {MAX_REUSE_GRACE_SECONDS} seconds (0 turns the grace off), not {grace}"
            ),
        });
    }
    Ok(SessionsConfig {
        max_age: days("SESSION_MAX_AGE_DAYS", 90)?,
        idle_ttl: days("REFRESH_TOKEN_TTL_DAYS", 30)?,
        reuse_grace: Duration::from_secs(grace),
    })
}

impl SessionsConfig {
    pub fn policy(&self) -> projects_store::SessionPolicy {
        projects_store::SessionPolicy {
            max_age: self.max_age,
            idle_ttl: self.idle_ttl,
            reuse_grace: self.reuse_grace,
        }
    }
}

/// Everything the server needs, from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub jwt_secret: SecretString,
    pub bind_addr: SocketAddr,
    /// Where `/metrics` is served; `None` (`METRICS_ADDR=off` or empty)
    /// serves no metrics.
    pub metrics_addr: Option<SocketAddr>,
    pub access_token_ttl: Duration,
    pub sessions: SessionsConfig,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub body_limit: usize,
    pub cors_origins: Vec<String>,
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub auth_rate_limit_per_minute: u32,
    pub redis_url: Option<SecretString>,
    pub abuse: AbuseConfig,
    pub hsts_seconds: u64,
    pub shutdown_grace: Duration,
    /// `SHUTDOWN_DRAIN_SECONDS`: after SIGTERM, how long readiness answers
    /// 503 while requests are still served, before the graceful shutdown.
    pub shutdown_drain: Duration,
    /// HTTP worker threads (`HTTP_WORKERS`); `None`: one per core, actix's
    /// default. See bench/README.md for the measurements behind it.
    pub http_workers: Option<usize>,
    pub migrate_on_start: bool,
    pub log_format: LogFormat,
    pub mail: MailConfig,
}

/// The shortest `JWT_SECRET` accepted, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Reads variables through `lookup`, so that tests need not touch the
/// process environment.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn get(&self, name: &'static str) -> Option<String> {
        (self.0)(name).filter(|value| !value.trim().is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.get(name).ok_or(ConfigError {
            variable: name,
            problem: "is required but not set".into(),
        })
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|_| ConfigError {
                variable: name,
                problem: format!("has an invalid value {raw:?}"),
            }),
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|raw| raw.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(raw) => match raw.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError {
                    variable: name,
                    problem: format!("must be true or false, not {raw:?}"),
                }),
            },
        }
    }
}

/// `BIND_ADDR` alone, for `projects-api healthcheck`.
pub fn bind_addr_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, ConfigError> {
    Env(lookup).parsed("BIND_ADDR", default_bind_addr())
}

fn default_bind_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

impl DatabaseConfig {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        database(&Env(lookup))
    }
}

fn database<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<DatabaseConfig, ConfigError> {
    let url = env.required("DATABASE_URL")?;
    if !is_postgres_url(&url) {
        return Err(ConfigError {
            variable: "DATABASE_URL",
            problem: "must be a postgres:// URL".into(),
        });
    }
    let pool_size = env.parsed("DATABASE_POOL_SIZE", 16usize)?;
    if pool_size == 0 {
        return Err(ConfigError {
            variable: "DATABASE_POOL_SIZE",
            problem: "must be at least 1".into(),
        });
    }
    let migration_url = env.get("DATABASE_MIGRATION_URL");
    if let Some(migration_url) = &migration_url
        && !is_postgres_url(migration_url)
    {
        return Err(ConfigError {
            variable: "DATABASE_MIGRATION_URL",
            problem: "must be a postgres:// URL (a direct connection, not a pooler)".into(),
        });
    }
    Ok(DatabaseConfig {
        url: url.into(),
        pool_size,
        timeout: Duration::from_millis(positive(env, "DATABASE_TIMEOUT_MS", 5000)?),
        slow_query: Duration::from_millis(env.parsed("SLOW_QUERY_MS", 200u64)?),
        prepared_statements: env.flag("DATABASE_PREPARED_STATEMENTS", true)?,
        migration_url: migration_url.map(SecretString::from),
    })
}

fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

fn positive<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match env.parsed(name, default)? {
        0 => Err(ConfigError {
            variable: name,
            problem: "must be greater than 0".into(),
        }),
        value => Ok(value),
    }
}

/// `METRICS_ADDR`: a separate listener, so that `/metrics` never shares the
/// public address. Unset: loopback port 9090; `off` or set but empty: none.
fn metrics_addr<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<Option<SocketAddr>, ConfigError> {
    const NAME: &str = "METRICS_ADDR";
    match (env.0)(NAME).map(|raw| raw.trim().to_owned()) {
        None => Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9090)))),
        Some(raw) if raw.is_empty() || raw.eq_ignore_ascii_case("off") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| ConfigError {
            variable: NAME,
            problem: format!("must be host:port or off, not {raw:?}"),
        }),
    }
}

impl Config {
    /// The configuration of the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(lookup);
        let database = database(&env)?;
        let jwt_secret = env.required("JWT_SECRET")?;
        if jwt_secret.len() < MIN_JWT_SECRET_BYTES {
            return Err(ConfigError {
                variable: "JWT_SECRET",
                problem: format!(
                    "must be at least {MIN_JWT_SECRET_BYTES} bytes (it has {})",
                    jwt_secret.len()
                ),
            });
        }
        if let Some(problem) = crate::jwt_secret::weakness(&jwt_secret) {
            return Err(ConfigError {
                variable: "JWT_SECRET",
                problem,
            });
        }
        let log_format = match env.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => {
                return Err(ConfigError {
                    variable: "LOG_FORMAT",
                    problem: format!("must be json or pretty, not {other:?}"),
                });
            }
        };
        let cors_origins: Vec<String> = env
            .get("CORS_ORIGINS")
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|origin| !origin.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        validate_origins(&cors_origins)?;
        Ok(Config {
            database,
            jwt_secret: jwt_secret.into(),
            bind_addr: env.parsed("BIND_ADDR", default_bind_addr())?,
            metrics_addr: metrics_addr(&env)?,
            access_token_ttl: Duration::from_secs(positive(&env, "ACCESS_TOKEN_TTL_SECONDS", 900)?),
            sessions: sessions(&env)?,
            jwt_issuer: env
                .get("JWT_ISSUER")
                .unwrap_or_else(|| "projects-api".into()),
            jwt_audience: env
                .get("JWT_AUDIENCE")
                .unwrap_or_else(|| "projects-api".into()),
            body_limit: env.parsed("BODY_LIMIT_BYTES", 16 * 1024usize)?,
            cors_origins,
            rate_limit_per_second: env.parsed("RATE_LIMIT_PER_SECOND", 100u32)?,
            rate_limit_burst: env.parsed("RATE_LIMIT_BURST", 200u32)?,
            auth_rate_limit_per_minute: env.parsed("AUTH_RATE_LIMIT_PER_MINUTE", 20u32)?,
            redis_url: env.get("REDIS_URL").map(SecretString::from),
            abuse: abuse(&env)?,
            hsts_seconds: env.parsed("HSTS_SECONDS", 0u64)?,
            shutdown_grace: Duration::from_secs(env.parsed("SHUTDOWN_GRACE_SECONDS", 30u64)?),
            shutdown_drain: Duration::from_secs(env.parsed("SHUTDOWN_DRAIN_SECONDS", 0u64)?),
            http_workers: match env.parsed("HTTP_WORKERS", 0usize)? {
                0 => None,
                workers => Some(workers),
            },
            migrate_on_start: env.flag("MIGRATE_ON_START", true)?,
            log_format,
            mail: mail(&env)?,
        })
    }
}

/// A CORS origin is `scheme://host[:port]`, nothing more: a path, a
/// trailing slash or a wildcard never matches a browser's `Origin`.
fn validate_origins(origins: &[String]) -> Result<(), ConfigError> {
    for origin in origins {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"));
        let valid = rest.is_some_and(|host| {
            !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        });
        if !valid {
            return Err(ConfigError {
                variable: "CORS_ORIGINS",
                problem: format!(
                    "has {origin:?}, which is not an origin like https://app.example.com"
                ),
            });
        }
    }
    Ok(())
}

impl DatabaseConfig {
    pub fn store_config(&self) -> projects_store::StoreConfig {
        projects_store::StoreConfig {
            url: self.url.expose_secret().to_owned(),
            pool_size: self.pool_size,
            shards: 1,
            timeout: self.timeout,
            slow_query: self.slow_query,
            prepared_statements: self.prepared_statements,
            migration_url: self
                .migration_url
                .as_ref()
                .map(|url| url.expose_secret().to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "4be1d07c9a2f63e85d1c7b0a9e4f2638";

    fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let config = load(&[
            ("DATABASE_URL", "postgres://localhost/db"),
            ("JWT_SECRET", SECRET),
        ])
        .expect("valid");
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.metrics_addr.map(|addr| addr.to_string()).as_deref(),
            Some("127.0.0.1:9090")
        );
        assert_eq!(config.database.pool_size, 16);
        assert_eq!(config.database.timeout, Duration::from_millis(5000));
        assert_eq!(config.database.slow_query, Duration::from_millis(200));
        assert!(config.database.prepared_statements);
        assert!(config.database.migration_url.is_none());
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(
            config.sessions,
            SessionsConfig {
                max_age: Duration::from_secs(90 * 86_400),
                idle_ttl: Duration::from_secs(30 * 86_400),
                reuse_grace: Duration::from_secs(10),
            }
        );
        assert_eq!(config.jwt_issuer, "projects-api");
        assert_eq!(config.jwt_audience, "projects-api");
        assert_eq!(config.body_limit, 16_384);
        assert!(config.cors_origins.is_empty());
        assert_eq!(
            (config.rate_limit_per_second, config.rate_limit_burst),
            (100, 200)
        );
        assert_eq!(config.auth_rate_limit_per_minute, 20);
        assert!(config.redis_url.is_none());
        assert!(config.abuse.trusted_proxies.is_empty());
        assert_eq!(config.abuse.redis_timeout, Duration::from_millis(50));
        assert_eq!(config.abuse.client_timeout, Duration::from_secs(10));
        assert_eq!(config.hsts_seconds, 0);
        assert_eq!(config.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.shutdown_drain, Duration::ZERO);
        assert_eq!(config.http_workers, None);
        assert!(config.migrate_on_start);
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn session_limits_are_read_and_bounded() {
        let with = |vars: &[(&'static str, &'static str)]| {
            let mut all = vec![("DATABASE_URL", "postgres://h/db"), ("JWT_SECRET", SECRET)];
            all.extend_from_slice(vars);
            load(&all)
        };
        let config = with(&[
            ("SESSION_MAX_AGE_DAYS", "7"),
            ("REFRESH_TOKEN_TTL_DAYS", "1"),
            ("REFRESH_REUSE_GRACE_SECONDS", "0"),
        ])
        .expect("valid");
        assert_eq!(config.sessions.max_age, Duration::from_secs(7 * 86_400));
        assert_eq!(config.sessions.idle_ttl, Duration::from_secs(86_400));
        assert_eq!(config.sessions.reuse_grace, Duration::ZERO);
        for (name, value) in [
            ("SESSION_MAX_AGE_DAYS", "0"),
            ("SESSION_MAX_AGE_DAYS", "100000"),
            ("SESSION_MAX_AGE_DAYS", "ninety"),
            ("REFRESH_TOKEN_TTL_DAYS", "0"),
            ("REFRESH_REUSE_GRACE_SECONDS", "3601"),
            ("REFRESH_REUSE_GRACE_SECONDS", "-1"),
        ] {
            let error = with(&[(name, value)]).expect_err(value);
            assert_eq!(error.variable, name, "{value}");
        }
    }

    #[test]
    fn refuses_a_missing_database_url() {
        let error = load(&[("JWT_SECRET", SECRET)]).expect_err("must fail");
        assert_eq!(error.variable, "DATABASE_URL");
    }

    #[test]
    fn refuses_a_missing_or_short_jwt_secret() {
        let error = load(&[("DATABASE_URL", "postgres://h/db")]).expect_err("must fail");
        assert_eq!(error.variable, "JWT_SECRET");
        let error = load(&[("DATABASE_URL", "postgres://h/db"), ("JWT_SECRET", "short")])
            .expect_err("must fail");
        assert_eq!(error.variable, "JWT_SECRET");
        assert!(error.to_string().contains("32 bytes"));
    }

    #[test]
    fn reads_lists_flags_and_formats() {
        let config = load(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("JWT_SECRET", SECRET),
            ("CORS_ORIGINS", "https://a.example, https://b.example,"),
            ("TRUST_FORWARDED_FOR", "true"),
            ("LOG_FORMAT", "pretty"),
            ("MIGRATE_ON_START", "false"),
        ])
        .expect("valid");
        assert_eq!(
            config.cors_origins,
            ["https://a.example", "https://b.example"]
        );
        assert_eq!(
            config.abuse.trusted_proxies,
            TrustedProxies::loopback_and_private()
        );
        assert!(!config.migrate_on_start);
        assert_eq!(config.log_format, LogFormat::Pretty);
    }

    #[test]
    fn names_the_variable_with_a_bad_value() {
        let error = load(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("JWT_SECRET", SECRET),
            ("DATABASE_POOL_SIZE", "lots"),
        ])
        .expect_err("must fail");
        assert_eq!(error.variable, "DATABASE_POOL_SIZE");
        let error = load(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("JWT_SECRET", SECRET),
            ("LOG_FORMAT", "xml"),
        ])
        .expect_err("must fail");
        assert_eq!(error.variable, "LOG_FORMAT");
    }

    #[test]
    fn reads_the_pooler_settings() {
        let config = load(&[
            ("DATABASE_URL", "postgres://pooler:6432/db"),
            ("JWT_SECRET", SECRET),
            ("DATABASE_PREPARED_STATEMENTS", "false"),
            ("DATABASE_MIGRATION_URL", "postgres://direct:5432/db"),
        ])
        .expect("valid");
        let store = config.database.store_config();
        assert!(!store.prepared_statements);
        assert_eq!(
            store.migration_url.as_deref(),
            Some("postgres://direct:5432/db")
        );
        for (variable, value) in [
            ("DATABASE_PREPARED_STATEMENTS", "sometimes"),
            ("DATABASE_MIGRATION_URL", "mysql://direct/db"),
        ] {
            let error = load(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("JWT_SECRET", SECRET),
                (variable, value),
            ])
            .expect_err("must fail");
            assert_eq!(error.variable, variable);
        }
    }

    #[test]
    fn metrics_can_move_or_be_turned_off() {
        let base = [("DATABASE_URL", "postgres://h/db"), ("JWT_SECRET", SECRET)];
        let with = |value: &'static str| {
            let mut vars = base.to_vec();
            vars.push(("METRICS_ADDR", value));
            load(&vars)
        };
        assert_eq!(
            with("0.0.0.0:9100").expect("valid").metrics_addr,
            Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
        );
        assert_eq!(with("off").expect("valid").metrics_addr, None);
        assert_eq!(with("OFF").expect("valid").metrics_addr, None);
        assert_eq!(with("").expect("valid").metrics_addr, None);
        assert_eq!(
            with("nine-thousand").expect_err("must fail").variable,
            "METRICS_ADDR"
        );
    }

    #[test]
    fn refuses_cors_origins_that_cannot_match() {
        for bad in [
            "*",
            "app.example",
            "https://app.example/",
            "https://a.example/path",
        ] {
            let error = load(&[
                ("DATABASE_URL", "postgres://h/db"),
                ("JWT_SECRET", SECRET),
                ("CORS_ORIGINS", bad),
            ])
            .expect_err(bad);
            assert_eq!(error.variable, "CORS_ORIGINS");
        }
        let config = load(&[
            ("DATABASE_URL", "postgres://h/db"),
            ("JWT_SECRET", SECRET),
            ("CORS_ORIGINS", "http://localhost:3000,https://[::1]:8443"),
        ])
        .expect("valid");
        assert_eq!(config.cors_origins.len(), 2);
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = load(&[
            ("DATABASE_URL", "postgres://u:hunter2@h/db"),
            ("JWT_SECRET", SECRET),
        ])
        .expect("valid");
        let debug = format!("{config:?}");
        assert!(!debug.contains(SECRET));
        assert!(!debug.contains("hunter2"));
    }

    #[test]
    fn http_workers_is_a_count_or_zero_for_one_per_core() {
        let with = |value: &str| {
            load(&[
                ("DATABASE_URL", "postgres://localhost/db"),
                ("JWT_SECRET", SECRET),
                ("HTTP_WORKERS", value),
            ])
        };
        assert_eq!(with("1").expect("valid").http_workers, Some(1));
        assert_eq!(with("0").expect("valid").http_workers, None);
        let error = with("many").expect_err("not a number");
        assert_eq!(error.variable, "HTTP_WORKERS");
    }

    #[test]
    fn mail_defaults_follow_the_contract_and_bad_values_name_their_variable() {
        let base = [
            ("DATABASE_URL", "postgres://localhost/db"),
            ("JWT_SECRET", SECRET),
        ];
        let mail = load(&base).expect("valid").mail;
        assert_eq!(mail.public_app_url, "http://127.0.0.1:8080");
        assert!(mail.smtp_url.is_none());
        assert_eq!(mail.from, "no-reply@localhost");
        assert_eq!(mail.dir, std::path::PathBuf::from("mail-outbox"));
        assert!(!mail.require_verified_email);
        assert_eq!(mail.password_reset_ttl, Duration::from_secs(30 * 60));
        assert_eq!(mail.email_verification_ttl, Duration::from_secs(48 * 3600));

        let with = |name: &'static str, value: &'static str| {
            let mut vars = base.to_vec();
            vars.push((name, value));
            load(&vars)
        };
        let trimmed = with("PUBLIC_APP_URL", "https://app.example.com/").expect("valid");
        assert_eq!(trimmed.mail.public_app_url, "https://app.example.com");
        for (name, value) in [
            ("PUBLIC_APP_URL", "ftp://x"),
            ("PUBLIC_APP_URL", "https://app.example.com/?a=b"),
            ("SMTP_URL", "mail.example.com:25"),
            ("SMTP_URL", "smtp://x:25?tls=sometimes"),
            ("MAIL_FROM", "not an address"),
            ("REQUIRE_VERIFIED_EMAIL", "maybe"),
            ("PASSWORD_RESET_TTL_MINUTES", "0"),
            ("EMAIL_VERIFICATION_TTL_HOURS", "soon"),
        ] {
            let error = with(name, value).expect_err(value);
            assert_eq!(error.variable, name, "{value}: {error}");
        }
        let smtp = with("SMTP_URL", "smtps://user:hunter3@mail.example.com").expect("valid");
        assert!(!format!("{smtp:?}").contains("hunter3"));
    }

    #[test]
    fn trusted_proxies_are_cidrs_and_the_flag_adds_the_private_ranges() {
        let with = |vars: &[(&'static str, &'static str)]| {
            let mut all = vec![
                ("DATABASE_URL", "postgres://localhost/db"),
                ("JWT_SECRET", SECRET),
            ];
            all.extend_from_slice(vars);
            load(&all)
        };
        let config = with(&[(
            "TRUSTED_PROXIES",
            "203.0.113.0/24, 2001:db8::/32,198.51.100.7",
        )])
        .expect("valid");
        assert_eq!(
            config
                .abuse
                .trusted_proxies
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
        );
        let both = with(&[
            ("TRUSTED_PROXIES", "203.0.113.0/24"),
            ("TRUST_FORWARDED_FOR", "true"),
        ])
        .expect("valid");
        assert_eq!(both.abuse.trusted_proxies.len(), 7);
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.0/8;"] {
            let error = with(&[("TRUSTED_PROXIES", bad)]).expect_err(bad);
            assert_eq!(error.variable, "TRUSTED_PROXIES");
            assert!(error.to_string().contains("CIDR"), "{error}");
        }
    }

    #[test]
    fn redis_timeout_is_positive_milliseconds() {
        let with = |value: &'static str| {
            load(&[
                ("DATABASE_URL", "postgres://localhost/db"),
                ("JWT_SECRET", SECRET),
                ("REDIS_TIMEOUT_MS", value),
            ])
        };
        assert_eq!(
            with("20").expect("valid").abuse.redis_timeout,
            Duration::from_millis(20)
        );
        for bad in ["0", "soon", "-5"] {
            assert_eq!(with(bad).expect_err(bad).variable, "REDIS_TIMEOUT_MS");
        }
    }
}
