//! `projects-api`: the server binary. It reads the configuration, sets up
//! logging, and runs one of the commands: `serve` (the default) or `migrate`.
//! Business logic lives in the library crates, never here.

mod config;
mod metrics_listener;
mod server;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError, DatabaseConfig};

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
    /// Print the OpenAPI document (JSON) and exit.
    Openapi,
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
        Command::Serve => Config::from_env().map(|config| {
            telemetry::init(config.log_format);
            run(server::serve(config))
        }),
        Command::Migrate => {
            DatabaseConfig::from_lookup(|name| std::env::var(name).ok()).map(|database| {
                telemetry::init(telemetry::format_from_env());
                run(server::migrate(database))
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
