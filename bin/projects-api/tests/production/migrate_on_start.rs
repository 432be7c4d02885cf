//! `MIGRATE_ON_START`: `serve` applies the migrations in a child process of
//! its own binary (`projects-api migrate`) and serves only when that child
//! succeeded.

use std::time::Duration;

use projects_testkit::TestDb;

use super::server::Server;

/// How many migrations the binary embeds: the files of `migrations/`.
fn migrations_in_tree() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    let count = std::fs::read_dir(dir)
        .expect("migrations/")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".sql"))
        .count();
    i64::try_from(count).expect("a few")
}

#[tokio::test]
async fn serve_migrates_an_empty_database_before_it_answers() {
    let db = TestDb::empty().await;
    let server = Server::start(db.url(), &[("MIGRATE_ON_START", "true")]).await;
    let applied: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM refinery_schema_history", &[])
        .await
        .expect("the migrations' history exists")
        .get(0);
    assert_eq!(applied, migrations_in_tree());
    // The child's log line, on the server's standard error.
    assert!(
        server
            .logged(|line| line.contains("database is up to date")
                && line.contains(&format!("\"migrations.applied\":{applied}")))
            .await,
        "{:#?}",
        server.logs()
    );
    let ready = reqwest::get(server.url("/health/ready"))
        .await
        .expect("the server answers");
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn a_failing_migration_stops_the_server_before_it_serves_and_says_why() {
    let db = TestDb::empty().await;
    // The first migration creates `users`: one already there makes it fail.
    db.client()
        .await
        .batch_execute("CREATE TABLE users (id int)")
        .await
        .expect("arrange");
    let mut server = Server::spawn(db.url(), &[("MIGRATE_ON_START", "true")]);
    let status = server
        .wait(Duration::from_secs(60))
        .await
        .expect("the server exits");
    assert!(!status.success(), "{status:?}");
    let logs = server.logs();
    // The child says what failed, the server that it does not serve.
    assert!(
        logs.iter()
            .any(|line| line.contains("cannot apply migrations") && line.contains("users")),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|line| line.contains("\"level\":\"ERROR\"")
            && line.contains("migrations were not applied")
            && line.contains("not serving")),
        "{logs:#?}"
    );
    assert!(
        reqwest::get(server.url("/health/live")).await.is_err(),
        "nothing listens"
    );
    // Nothing of the history was recorded either.
    let recorded: i64 = match history_table(&db).await {
        Some(_) => db
            .client()
            .await
            .query_one("SELECT count(*) FROM refinery_schema_history", &[])
            .await
            .expect("query")
            .get(0),
        None => 0,
    };
    assert_eq!(recorded, 0);
}

#[tokio::test]
async fn without_migrate_on_start_an_empty_database_stays_empty() {
    let db = TestDb::empty().await;
    let mut server = Server::spawn(db.url(), &[("MIGRATE_ON_START", "false")]);
    // Whatever the server then does with the missing tables (it may exit
    // or serve), no migration is run for it in this time.
    let _ = server.wait(Duration::from_secs(5)).await;
    assert_eq!(history_table(&db).await, None);
}

/// The migration history's table, when it exists.
async fn history_table(db: &TestDb) -> Option<String> {
    db.client()
        .await
        .query_one("SELECT to_regclass('refinery_schema_history')::text", &[])
        .await
        .expect("query")
        .get(0)
}
