//! Per-test databases on the server named by `DATABASE_URL`.
//!
//! The first test of a run migrates a template database (its name carries a
//! hash of the migrations, so a changed migration gets a fresh template);
//! every test then clones it with `CREATE DATABASE … TEMPLATE`, which takes
//! milliseconds. Test processes coordinate through an advisory lock, so
//! parallel runners (nextest runs each test in its own process) migrate the
//! template once.

use std::time::Duration;

use projects_store::{Store, StoreConfig};
use sha2::{Digest, Sha256};
use tokio_postgres::{Client, NoTls};

/// Per-test databases start with this; `just test` checks that none is left.
pub const TEST_DATABASE_PREFIX: &str = "pa_test_";
const TEMPLATE_PREFIX: &str = "pa_template_";
const TEMPLATE_LOCK_KEY: i64 = 0x7061_7465_6d70_6c74;

/// A fresh, migrated database, dropped when this guard drops.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    server_url: String,
    store: Store,
}

impl TestDb {
    /// Creates a database cloned from the migrated template.
    ///
    /// Panics (failing the test) when `DATABASE_URL` is unset or the server
    /// does not answer: a test that needs a database must not pass without.
    pub async fn new() -> Self {
        let server_url = server_url();
        let admin = connect(&server_url).await;
        let template = ensure_template(&admin, &server_url).await;
        Self::create(&admin, server_url, &format!(r#"TEMPLATE "{template}""#)).await
    }

    /// An empty database, never migrated, dropped like the others.
    pub async fn empty() -> Self {
        let server_url = server_url();
        let admin = connect(&server_url).await;
        Self::create(&admin, server_url, "").await
    }

    async fn create(admin: &Client, server_url: String, template: &str) -> Self {
        let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
        admin
            .batch_execute(&format!(r#"CREATE DATABASE "{name}" {template}"#))
            .await
            .unwrap_or_else(|error| panic!("cannot create test database {name}: {error:?}"));
        let url = database_url(&server_url, &name);
        let mut config = StoreConfig::new(url.clone());
        config.pool_size = 4;
        config.timeout = Duration::from_secs(10);
        let store = Store::connect(&config).expect("the test database URL is valid");
        Self {
            name,
            url,
            server_url,
            store,
        }
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL for this database, for building pools or running the binary.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A store over this database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A plain connection, for arranging data and checking it behind the
    /// API's back.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.store.close();
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and it may run inside a runtime: drop the
        // database from a thread of its own, and wait for it.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for dropping the test database");
            runtime.block_on(async {
                let admin = connect(&server_url).await;
                admin
                    .batch_execute(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop test database {}: {dropped:?}", self.name);
        }
    }
}

/// The server the tests run against, from `DATABASE_URL`.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!("DATABASE_URL is not set: run the tests with `just test`, which starts a database")
    })
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to the test server: {error}"));
    tokio::spawn(connection);
    client
}

/// `url` with its database name replaced by `database`.
fn database_url(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The name of the template for the current migrations.
fn template_name() -> String {
    let directory = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(directory)
        .expect("the migrations directory exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hash.update(std::fs::read(&file).expect("a migration is readable"));
    }
    let digest = hash.finalize();
    let short: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("{TEMPLATE_PREFIX}{short}")
}

/// Creates and migrates the template once, whoever asks first.
async fn ensure_template(admin: &Client, server_url: &str) -> String {
    let template = template_name();
    admin
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("the template lock");
    let exists = admin
        .query_opt(
            "SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate",
            &[&template],
        )
        .await
        .expect("looking up the template")
        .is_some();
    if !exists {
        build_template(admin, server_url, &template).await;
    }
    admin
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK_KEY])
        .await
        .expect("releasing the template lock");
    template
}

async fn build_template(admin: &Client, server_url: &str, template: &str) {
    // A half-built template from an interrupted run is rebuilt.
    for statement in [
        format!(r#"DROP DATABASE IF EXISTS "{template}" WITH (FORCE)"#),
        format!(r#"CREATE DATABASE "{template}""#),
    ] {
        admin
            .batch_execute(&statement)
            .await
            .expect("creating the template database");
    }
    let store = Store::connect(&StoreConfig::new(database_url(server_url, template)))
        .expect("the template URL is valid");
    store.migrate().await.expect("migrating the template");
    store.close();
    drop(store);
    // The pool's sessions may still be closing; a template must have none.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&template],
        )
        .await
        .expect("closing the template's sessions");
    admin
        .batch_execute(&format!(
            r#"ALTER DATABASE "{template}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"#
        ))
        .await
        .expect("marking the template");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_in_a_url() {
        assert_eq!(
            database_url("postgres://u:p@h:5432/postgres", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            database_url("postgres://h:5432/db?sslmode=disable", "x"),
            "postgres://h:5432/x?sslmode=disable"
        );
        assert_eq!(database_url("postgres://h", "x"), "postgres://h/x");
    }
}
