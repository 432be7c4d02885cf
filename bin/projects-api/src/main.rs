//! `projects-api`: the server binary. It reads the configuration, sets up
//! logging, and runs one of the commands: `serve` (the default), `migrate` or
//! `create-admin`.
//! Business logic lives in the library crates, never here.

mod config;
mod connections;
mod create_admin;
mod healthcheck;
mod json_log;
mod jwt_secret;
mod metrics_listener;
mod migrate_child;
mod periodic;
mod server;
mod telemetry;
mod worker;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};

/// A production-grade REST API for users and their projects.
#[derive(Debug, Parser)]
#[command(name = "projects-api", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations (unless MIGRATE_ON_START=false), then serve.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Create an admin, or promote an existing user; the password comes from
    /// ADMIN_PASSWORD or standard input.
    CreateAdmin {
        /// The admin's e-mail address.
        #[arg(long)]
        email: String,
        /// The admin's display name (used when the user is created).
        #[arg(long)]
        name: String,
    },
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
    /// Estimate the strength of the password on standard input and print
    /// the answer as JSON: the child process in which the server runs each
    /// estimate (`projects_auth::StrengthEstimator`).
    #[command(hide = true)]
    PasswordStrength,
    /// Ask the server on BIND_ADDR for /health/ready (or --path); exit 0
    /// only on 200. For container health checks (no shell, no curl).
    Healthcheck {
        /// The path to ask for.
        #[arg(long, default_value = "/health/ready")]
        path: String,
    },
}

/// Exit code for a configuration the server refuses to start with.
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    // A missing .env is normal (production); a malformed one is not.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("error: cannot read .env: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let cli = Cli::parse();
    let result = match cli.command.unwrap_or(Command::Serve) {
        // Needs no configuration: the document is generated from the code.
        Command::Openapi => {
            print!("{}", projects_http::openapi::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::PasswordStrength => Ok(
            match projects_auth::answer_in_child(std::io::stdin().lock(), std::io::stdout().lock())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            },
        ),
        Command::Healthcheck { path } => {
            config::bind_addr_from_lookup(|name| std::env::var(name).ok())
                .map(|addr| healthcheck::main(addr, &path))
        }
        Command::Serve => Config::from_env().map(|config| {
            telemetry::init(config.server.log_format);
            if config.server.migrate_on_start {
                // In a child of this binary, before the runtime starts: the
                // migration code and SQL leave with it (see migrate_child).
                // Its path, not `/proc/self/exe`: under valgrind (`just bench
                // --instructions`) that names valgrind's tool, which refuses
                // to run; the file was exec'd a moment ago.
                let migrated = std::env::current_exe()
                    .context("cannot find this binary to run `migrate`")
                    .and_then(|program| migrate_child::migrate(&program));
                if let Err(error) = migrated {
                    tracing::error!(error = format!("{error:#}"), "command failed");
                    return ExitCode::FAILURE;
                }
            }
            run(server::serve(config))
        }),
        Command::Migrate => {
            config::database_from_lookup(|name| std::env::var(name).ok()).map(|database| {
                telemetry::init(telemetry::format_from_env());
                run(server::migrate(database))
            })
        }
        Command::CreateAdmin { email, name } => {
            config::database_from_lookup(|variable| std::env::var(variable).ok()).map(|database| {
                let source = match std::env::var("ADMIN_PASSWORD") {
                    Ok(password) if !password.is_empty() => {
                        create_admin::PasswordSource::Env(password.into())
                    }
                    _ => create_admin::PasswordSource::Stdin,
                };
                create_admin::main(database, &email, &name, source)
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(ConfigError { variable, problem }) => {
            eprintln!("error: {variable} {problem}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// Runs a command on the Tokio runtime; an error is logged once, here.
fn run(command: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "command failed");
            ExitCode::FAILURE
        }
    }
}
