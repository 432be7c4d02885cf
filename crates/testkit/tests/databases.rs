//! The testkit's promise: each test gets its own migrated database, and the
//! database is gone when the guard drops.

use projects_testkit::TestDb;

async fn database_exists(name: &str) -> bool {
    let (client, connection) =
        tokio_postgres::connect(&projects_testkit::server_url(), tokio_postgres::NoTls)
            .await
            .expect("connect to the server");
    tokio::spawn(connection);
    client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("query pg_database")
        .is_some()
}

#[tokio::test]
async fn each_test_database_is_fresh_migrated_and_dropped_with_its_guard() {
    let first = TestDb::new().await;
    let second = TestDb::new().await;
    assert_ne!(first.name(), second.name());
    assert!(
        first
            .name()
            .starts_with(projects_testkit::TEST_DATABASE_PREFIX)
    );

    // Migrated: the tables exist and are empty; writes to one database do not
    // show in the other.
    let client = first.client().await;
    client
        .batch_execute(
            "INSERT INTO users (id, email, name, password_hash) \
             VALUES (gen_random_uuid(), 'a@example.com', 'A', 'x')",
        )
        .await
        .expect("insert into the first database");
    let other = second.client().await;
    let count: i64 = other
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 0);
    drop(client);
    drop(other);

    let name = first.name().to_owned();
    assert!(database_exists(&name).await);
    drop(first);
    assert!(
        !database_exists(&name).await,
        "the guard drops its database"
    );
}
