//! `projects-api create-admin --email E --name N`: creates an admin, or
//! promotes the user with that e-mail (and sets the given password, which
//! revokes their refresh tokens). The password comes from `ADMIN_PASSWORD`
//! or, when that is unset, from the first line of standard input; it is held
//! to the same rules as a registration. Every failure is one line on
//! standard error and a non-zero exit code.

use std::io::BufRead as _;
use std::process::ExitCode;

use garde::Validate as _;
use projects_auth::PasswordHasher;
use projects_domain::inputs::{Input as _, Registration, password_weakness, violations};
use projects_domain::{Role, SessionEndReason};
use projects_store::{NewUser, SessionScope, Store, StoreConfig, StoreError};
use secrecy::{ExposeSecret as _, SecretString};

/// Where the password comes from.
#[derive(Debug)]
pub enum PasswordSource {
    /// `ADMIN_PASSWORD` was set.
    Env(SecretString),
    /// Read the first line of standard input.
    Stdin,
}

/// Runs the command; prints one line and returns the exit code.
pub fn main(database: StoreConfig, email: &str, name: &str, source: PasswordSource) -> ExitCode {
    match create_admin(database, email, name, source) {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn read_password(source: PasswordSource) -> Result<SecretString, String> {
    match source {
        PasswordSource::Env(password) => Ok(password),
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|error| {
                    format!("cannot read the password from standard input: {error}")
                })?;
            // Only the line ending goes: spaces are part of a password.
            let password = line
                .strip_suffix('\n')
                .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
                .unwrap_or(&line);
            if password.is_empty() {
                return Err(
                    "no password: set ADMIN_PASSWORD or write the password to standard input"
                        .into(),
                );
            }
            Ok(password.to_owned().into())
        }
    }
}

fn create_admin(
    database: StoreConfig,
    email: &str,
    name: &str,
    source: PasswordSource,
) -> Result<String, String> {
    let password = read_password(source)?;
    let input = Registration {
        email: Some(email.to_owned()),
        name: Some(name.trim().to_owned()),
        password: Some(password.expose_secret().to_owned()),
    };
    let mut problems: Vec<String> = Vec::new();
    for (field, value) in [
        ("email", email),
        ("name", name),
        ("password", password.expose_secret()),
    ] {
        if value.chars().any(char::is_control) {
            problems.push(format!("{field} must not contain control characters"));
        }
    }
    if let Err(report) = input.validate() {
        problems.extend(
            violations(&report)
                .into_iter()
                .map(|violation| format!("{} {}", violation.field, violation.message)),
        );
    }
    // The strength estimate is not a garde rule (the server runs it off its
    // request workers); a command line can run it here.
    for (field, new_password) in input.new_passwords() {
        if let Some(weakness) = password_weakness(new_password) {
            problems.push(format!("{field} {weakness}"));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let email = input
        .parsed_email()
        .map_err(|error| format!("email {error}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    runtime.block_on(async move {
        let store = Store::connect(&database)
            .map_err(|_| "DATABASE_URL is not a valid PostgreSQL URL".to_owned())?;
        let result = async {
            match store.ready().await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(
                        "the database is not migrated: run `projects-api migrate` first".to_owned(),
                    );
                }
                Err(error) => return Err(format!("cannot reach the database: {error}")),
            }
            let hash = PasswordHasher::default()
                .hash(password.expose_secret())
                .await
                .map_err(|error| error.to_string())?;
            let new_user = NewUser {
                email: email.clone(),
                name: input.name.clone().unwrap_or_default(),
                role: Role::Admin,
                password_hash: hash.clone(),
            };
            match store.users().insert(&new_user).await {
                Ok(user) => Ok(format!("created admin {}", user.id)),
                Err(StoreError::Conflict { .. }) => {
                    let user = store
                        .users()
                        .promote_by_email(&email, &hash)
                        .await
                        .map_err(|error| format!("cannot promote the user: {error}"))?;
                    // A new password ends every session; the servers learn
                    // of it from the ended-sessions feed.
                    store
                        .sessions()
                        .end(
                            SessionScope::AllOfUser(user.id),
                            SessionEndReason::PasswordReset,
                        )
                        .await
                        .map_err(|error| format!("cannot revoke the user's sessions: {error}"))?;
                    Ok(format!(
                        "promoted existing user {} to admin and set their password",
                        user.id
                    ))
                }
                Err(error) => Err(format!("cannot create the admin: {error}")),
            }
        }
        .await;
        store.close();
        result
    })
}
