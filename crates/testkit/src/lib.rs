//! Test support for projects-api, used only as a dev-dependency: a fresh,
//! migrated database per test (cloned from a template that is migrated once
//! per run and dropped again when the test's guard drops), so that tests run
//! in parallel, in any order, against a real PostgreSQL.
//!
//! `TestApp` drives the real application in-process over such a database,
//! with request helpers and user factories (`app.user()`, `app.admin()`).
//!
//! `PgBouncer` starts a real transaction-pooling proxy in front of the
//! test server, for the tests that must hold behind one.
//!
//! Nothing the server needs at run time may live here.

mod app;
mod database;
mod pgbouncer;
mod smtp;
mod state;

pub use app::{TEST_PASSWORD, TestApp, TestResponse, TestUser, unique_email};
pub use database::{TEST_DATABASE_PREFIX, TestDb, server_url};
pub use pgbouncer::PgBouncer;
pub use smtp::{FailingSmtpServer, ReceivedMail, SmtpServer};
pub use state::{ForTests, TEST_JWT_SECRET, test_token_config};
