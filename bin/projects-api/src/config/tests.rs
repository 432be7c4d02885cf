//! The sections read from variables: defaults, bounds, and the variable
//! each refusal names.

use std::net::SocketAddr;
use std::time::Duration;

use projects_http::client_ip::TrustedProxies;
use projects_store::SessionPolicy;

use std::collections::HashMap;

use super::*;

const SECRET: &str = "4be1d07c9a2f63e85d1c7b0a9e4f2638";

fn load(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned())
}

/// The configuration of `vars` over the two required variables (a later
/// entry overrides an earlier one).
fn with(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let mut all = vec![("DATABASE_URL", "postgres://h/db"), ("JWT_SECRET", SECRET)];
    all.extend_from_slice(vars);
    load(&all)
}

#[test]
fn defaults_follow_the_contract() {
    let config = with(&[]).expect("valid");
    assert_eq!(config.server.bind_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(
        config
            .server
            .metrics_addr
            .map(|addr| addr.to_string())
            .as_deref(),
        Some("127.0.0.1:9090")
    );
    assert_eq!(config.database.pool_size, 16);
    assert_eq!(config.database.timeout, Duration::from_millis(5000));
    assert_eq!(config.database.slow_query, Duration::from_millis(200));
    assert!(config.database.prepared_statements);
    assert!(config.database.migration_url.is_none());
    assert_eq!(config.database.shards, 1);
    assert_eq!(config.tokens.access_ttl, Duration::from_secs(900));
    assert_eq!(
        config.http.sessions,
        SessionPolicy {
            max_age: Duration::from_secs(90 * 86_400),
            idle_ttl: Duration::from_secs(30 * 86_400),
            reuse_grace: Duration::from_secs(10),
        }
    );
    assert_eq!(config.tokens.issuer, "projects-api");
    assert_eq!(config.tokens.audience, "projects-api");
    assert_eq!(config.http.body_limit, 16_384);
    assert!(config.http.cors_origins.is_empty());
    assert_eq!(
        (
            config.http.rate_limits.per_second,
            config.http.rate_limits.burst
        ),
        (100, 200)
    );
    assert_eq!(config.http.rate_limits.auth_per_minute, 20);
    assert!(config.http.rate_limits.redis_url.is_none());
    assert!(config.http.rate_limits.trusted_proxies.is_empty());
    assert_eq!(
        config.http.rate_limits.redis_timeout,
        Duration::from_millis(50)
    );
    assert_eq!(config.server.client_timeout, Duration::from_secs(10));
    assert_eq!(config.http.hsts_seconds, 0);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
    assert_eq!(config.server.shutdown_drain, Duration::ZERO);
    assert_eq!(config.server.http_workers, None);
    assert!(config.server.migrate_on_start);
    assert_eq!(config.server.log_format, LogFormat::Json);
}

#[test]
fn session_limits_are_read_and_bounded() {
    let config = with(&[
        ("SESSION_MAX_AGE_DAYS", "7"),
        ("REFRESH_TOKEN_TTL_DAYS", "1"),
        ("REFRESH_REUSE_GRACE_SECONDS", "0"),
    ])
    .expect("valid");
    assert_eq!(
        config.http.sessions.max_age,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(config.http.sessions.idle_ttl, Duration::from_secs(86_400));
    assert_eq!(config.http.sessions.reuse_grace, Duration::ZERO);
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
    let config = with(&[
        ("CORS_ORIGINS", "https://a.example, https://b.example,"),
        ("TRUST_FORWARDED_FOR", "true"),
        ("LOG_FORMAT", "pretty"),
        ("MIGRATE_ON_START", "false"),
    ])
    .expect("valid");
    assert_eq!(
        config.http.cors_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(
        config.http.rate_limits.trusted_proxies,
        TrustedProxies::new(TrustedProxies::loopback_and_private())
    );
    assert!(!config.server.migrate_on_start);
    assert_eq!(config.server.log_format, LogFormat::Pretty);
}

#[test]
fn names_the_variable_with_a_bad_value() {
    let error = with(&[("DATABASE_POOL_SIZE", "lots")]).expect_err("must fail");
    assert_eq!(error.variable, "DATABASE_POOL_SIZE");
    let error = with(&[("LOG_FORMAT", "xml")]).expect_err("must fail");
    assert_eq!(error.variable, "LOG_FORMAT");
}

#[test]
fn reads_the_pooler_settings() {
    let config = with(&[
        ("DATABASE_URL", "postgres://pooler:6432/db"),
        ("DATABASE_PREPARED_STATEMENTS", "false"),
        ("DATABASE_MIGRATION_URL", "postgres://direct:5432/db"),
    ])
    .expect("valid");
    let store = config.database;
    assert!(!store.prepared_statements);
    assert_eq!(
        store.migration_url.as_deref(),
        Some("postgres://direct:5432/db")
    );
    for (variable, value) in [
        ("DATABASE_PREPARED_STATEMENTS", "sometimes"),
        ("DATABASE_MIGRATION_URL", "mysql://direct/db"),
    ] {
        let error = with(&[(variable, value)]).expect_err("must fail");
        assert_eq!(error.variable, variable);
    }
}

#[test]
fn metrics_can_move_or_be_turned_off() {
    let metrics = |value| with(&[("METRICS_ADDR", value)]);
    assert_eq!(
        metrics("0.0.0.0:9100").expect("valid").server.metrics_addr,
        Some(SocketAddr::from(([0, 0, 0, 0], 9100)))
    );
    assert_eq!(metrics("off").expect("valid").server.metrics_addr, None);
    assert_eq!(metrics("OFF").expect("valid").server.metrics_addr, None);
    assert_eq!(metrics("").expect("valid").server.metrics_addr, None);
    assert_eq!(
        metrics("nine-thousand").expect_err("must fail").variable,
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
        let error = with(&[("CORS_ORIGINS", bad)]).expect_err(bad);
        assert_eq!(error.variable, "CORS_ORIGINS");
    }
    let config =
        with(&[("CORS_ORIGINS", "http://localhost:3000,https://[::1]:8443")]).expect("valid");
    assert_eq!(config.http.cors_origins.len(), 2);
}

#[test]
fn debug_output_hides_secrets() {
    let config = with(&[("DATABASE_URL", "postgres://u:hunter2@h/db")]).expect("valid");
    let debug = format!("{config:?}");
    assert!(!debug.contains(SECRET));
    assert!(!debug.contains("hunter2"));
}

#[test]
fn debug_output_hides_every_secret_of_every_section() {
    let config = with(&[
        ("DATABASE_URL", "postgres://u:db-password@h/db"),
        (
            "DATABASE_MIGRATION_URL",
            "postgres://u:migration-password@direct/db",
        ),
        ("SMTP_URL", "smtps://user:smtp-password@mail.example.com"),
        ("REDIS_URL", "redis://:redis-password@127.0.0.1:6379"),
    ])
    .expect("valid");
    let debug = format!("{config:?}");
    for secret in [
        SECRET,
        "db-password",
        "migration-password",
        "smtp-password",
        "redis-password",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    // The sections are all there, and so are the settings beside the
    // secrets: only the secrets are left out.
    for shown in ["server", "database", "http", "tokens", "mail", "pool_size"] {
        assert!(debug.contains(shown), "{shown} not in {debug}");
    }
}

#[test]
fn http_workers_is_a_count_or_zero_for_one_per_core() {
    let workers = |value| with(&[("HTTP_WORKERS", value)]);
    assert_eq!(workers("1").expect("valid").server.http_workers, Some(1));
    assert_eq!(workers("0").expect("valid").server.http_workers, None);
    let error = workers("many").expect_err("not a number");
    assert_eq!(error.variable, "HTTP_WORKERS");
}

#[test]
fn mail_defaults_follow_the_contract_and_bad_values_name_their_variable() {
    let mail = with(&[]).expect("valid").mail;
    assert_eq!(mail.public_app_url, "http://127.0.0.1:8080");
    assert!(mail.mailer.smtp_url.is_none());
    assert_eq!(mail.mailer.from, "no-reply@localhost");
    assert_eq!(mail.mailer.dir, std::path::PathBuf::from("mail-outbox"));
    assert!(!mail.accounts.require_verified_email);
    assert_eq!(
        mail.accounts.password_reset_ttl,
        Duration::from_secs(30 * 60)
    );
    assert_eq!(
        mail.accounts.email_verification_ttl,
        Duration::from_secs(48 * 3600)
    );

    let trimmed = with(&[("PUBLIC_APP_URL", "https://app.example.com/")]).expect("valid");
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
        let error = with(&[(name, value)]).expect_err(value);
        assert_eq!(error.variable, name, "{value}: {error}");
    }
    let smtp = with(&[("SMTP_URL", "smtps://user:hunter3@mail.example.com")]).expect("valid");
    assert!(!format!("{smtp:?}").contains("hunter3"));
}

#[test]
fn trusted_proxies_are_cidrs_and_the_flag_adds_the_private_ranges() {
    let config = with(&[(
        "TRUSTED_PROXIES",
        "203.0.113.0/24, 2001:db8::/32,198.51.100.7",
    )])
    .expect("valid");
    assert_eq!(
        config
            .http
            .rate_limits
            .trusted_proxies
            .blocks()
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
    assert_eq!(both.http.rate_limits.trusted_proxies.blocks().len(), 7);
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.0/8;"] {
        let error = with(&[("TRUSTED_PROXIES", bad)]).expect_err(bad);
        assert_eq!(error.variable, "TRUSTED_PROXIES");
        assert!(error.to_string().contains("CIDR"), "{error}");
    }
}

#[test]
fn redis_timeout_is_positive_milliseconds() {
    let timeout = |value| with(&[("REDIS_TIMEOUT_MS", value)]);
    assert_eq!(
        timeout("20").expect("valid").http.rate_limits.redis_timeout,
        Duration::from_millis(20)
    );
    for bad in ["0", "soon", "-5"] {
        assert_eq!(timeout(bad).expect_err(bad).variable, "REDIS_TIMEOUT_MS");
    }
}
