//! The auth and users rows of the contract, driven in-process over a real
//! PostgreSQL (one fresh database per test).

#[path = "accounts/auth.rs"]
mod auth;
#[path = "accounts/expensive_checks.rs"]
mod expensive_checks;
#[path = "accounts/forgery.rs"]
mod forgery;
#[path = "accounts/users.rs"]
mod users;
#[path = "accounts/validation.rs"]
mod validation;
