//! The schema's constraints hold even if the code is wrong: each test goes
//! behind the repositories' back with plain SQL.

use projects_domain::{Email, Role, UserId};
use projects_store::{NewUser, StoreError};
use projects_testkit::TestDb;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).expect("valid email"),
        name: "Ada Lovelace".into(),
        role: Role::User,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
    }
}

async fn insert_project(client: &tokio_postgres::Client, owner: UserId) -> Uuid {
    let id = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, 'Apollo')",
            &[&id, owner.as_uuid()],
        )
        .await
        .expect("insert project");
    id
}

#[tokio::test]
async fn a_duplicate_email_in_another_letter_case_is_a_conflict() {
    let db = TestDb::new().await;
    db.store()
        .users()
        .insert(&new_user("ada@example.com"))
        .await
        .expect("first insert");
    // Behind the normalisation: the index itself compares case-insensitively.
    let client = db.client().await;
    let error = client
        .execute(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'ADA@Example.com', 'A', 'x')",
            &[&Uuid::now_v7()],
        )
        .await
        .expect_err("duplicate must fail");
    assert_eq!(error.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert!(matches!(
        StoreError::from(error),
        StoreError::Conflict { constraint: Some(ref name) } if name == "users_email_key"
    ));
    let error = db
        .store()
        .users()
        .insert(&new_user("Ada@EXAMPLE.com"))
        .await
        .expect_err("duplicate through the repository must fail");
    assert!(matches!(error, StoreError::Conflict { .. }), "{error:?}");
}

#[tokio::test]
async fn a_bad_role_or_status_is_rejected() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let error = client
        .execute(
            "INSERT INTO users (id, email, name, role, password_hash) VALUES ($1, 'x@example.com', 'X', 'root', 'x')",
            &[&Uuid::now_v7()],
        )
        .await
        .expect_err("bad role must fail");
    assert!(
        matches!(StoreError::from(error), StoreError::Check { constraint: Some(ref c) } if c == "users_role_check")
    );

    let user = db
        .store()
        .users()
        .insert(&new_user("y@example.com"))
        .await
        .expect("user");
    let error = client
        .execute(
            "INSERT INTO projects (id, owner_id, name, status) VALUES ($1, $2, 'P', 'deleted')",
            &[&Uuid::now_v7(), user.id.as_uuid()],
        )
        .await
        .expect_err("bad status must fail");
    assert!(
        matches!(StoreError::from(error), StoreError::Check { constraint: Some(ref c) } if c == "projects_status_check")
    );
}

#[tokio::test]
async fn a_project_of_a_missing_owner_is_a_foreign_key_error() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let error = client
        .execute(
            "INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, 'P')",
            &[&Uuid::now_v7(), &Uuid::now_v7()],
        )
        .await
        .expect_err("missing owner must fail");
    assert!(matches!(
        StoreError::from(error),
        StoreError::ForeignKey { .. }
    ));
}

#[tokio::test]
async fn deleting_a_user_cascades_to_projects_sessions_and_refresh_tokens() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let user = db
        .store()
        .users()
        .insert(&new_user("z@example.com"))
        .await
        .expect("user");
    insert_project(&client, user.id).await;
    let session = Uuid::now_v7();
    client
        .execute(
            "INSERT INTO sessions (id, user_id, expires_at, idle_expires_at) \
             VALUES ($1, $2, now() + interval '1 day', now() + interval '1 day')",
            &[&session, user.id.as_uuid()],
        )
        .await
        .expect("insert session");
    client
        .execute(
            "INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at) \
             VALUES ($1, $2, $3, now() + interval '1 day')",
            &[&Uuid::now_v7(), &session, &vec![7u8; 32]],
        )
        .await
        .expect("insert token");

    db.store().users().delete(user.id).await.expect("delete");

    for table in ["projects", "sessions", "refresh_tokens"] {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count");
        assert_eq!(row.get::<_, i64>(0), 0, "{table} must be empty");
    }
    // The ended-sessions feed keeps the session: its access tokens must go
    // on being refused after the user is gone.
    let fed = client
        .query_one(
            "SELECT count(*) FROM session_endings WHERE session_id = $1",
            &[&session],
        )
        .await
        .expect("count");
    assert_eq!(fed.get::<_, i64>(0), 1);
    let again = db.store().users().delete(user.id).await;
    assert!(matches!(again, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn an_update_bumps_version_and_updated_at_but_never_created_at() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let user = db
        .store()
        .users()
        .insert(&new_user("w@example.com"))
        .await
        .expect("user");
    let id = insert_project(&client, user.id).await;
    // Separate transactions, so now() differs.
    let before = client
        .query_one(
            "SELECT version, created_at, updated_at FROM projects WHERE id = $1",
            &[&id],
        )
        .await
        .expect("select");
    let after = client
        .query_one(
            "UPDATE projects SET name = 'Gemini', version = 42, created_at = now() - interval '1 year' \
             WHERE id = $1 RETURNING version, created_at, updated_at",
            &[&id],
        )
        .await
        .expect("update");
    assert_eq!(before.get::<_, i32>(0), 1);
    assert_eq!(
        after.get::<_, i32>(0),
        2,
        "the trigger bumps the version, whatever was sent"
    );
    assert_eq!(
        after.get::<_, time::OffsetDateTime>(1),
        before.get::<_, time::OffsetDateTime>(1),
        "created_at never changes"
    );
    assert!(after.get::<_, time::OffsetDateTime>(2) > before.get::<_, time::OffsetDateTime>(2));

    let user_after = client
        .query_one(
            "UPDATE users SET name = 'Ada' WHERE id = $1 RETURNING updated_at",
            &[user.id.as_uuid()],
        )
        .await
        .expect("update user");
    assert!(user_after.get::<_, time::OffsetDateTime>(0) > user.updated_at);
}

#[tokio::test]
async fn no_update_skips_the_version_bump_or_sets_the_timestamps() {
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let user = db
        .store()
        .users()
        .insert(&new_user("v@example.com"))
        .await
        .expect("user");
    let first = insert_project(&client, user.id).await;
    let second = insert_project(&client, user.id).await;
    let read = "SELECT version, created_at, updated_at FROM projects WHERE id = $1";
    let before = client.query_one(read, &[&first]).await.expect("select");

    // Keeping the version and choosing the timestamps: the trigger decides.
    let after = client
        .query_one(
            "UPDATE projects SET version = version, created_at = '2000-01-01T00:00:00Z', \
             updated_at = '2000-01-01T00:00:00Z' WHERE id = $1 \
             RETURNING version, created_at, updated_at",
            &[&first],
        )
        .await
        .expect("update");
    assert_eq!(
        after.get::<_, i32>(0),
        2,
        "the version is bumped all the same"
    );
    assert_eq!(
        after.get::<_, time::OffsetDateTime>(1),
        before.get::<_, time::OffsetDateTime>(1),
        "created_at stays"
    );
    assert!(
        after.get::<_, time::OffsetDateTime>(2) > before.get::<_, time::OffsetDateTime>(2),
        "updated_at is now(), not the value sent"
    );

    // Two updates in one transaction: two bumps, and updated_at is that
    // transaction's now(); a statement over several rows bumps each once.
    let tx = client.transaction().await.expect("begin");
    tx.execute("UPDATE projects SET version = 1 WHERE id = $1", &[&first])
        .await
        .expect("update");
    tx.execute(
        "UPDATE projects SET name = 'Gemini' WHERE id = $1",
        &[&first],
    )
    .await
    .expect("update");
    tx.execute(
        "UPDATE projects SET version = 1 WHERE id = ANY($1)",
        &[&vec![first, second]],
    )
    .await
    .expect("update");
    let now: time::OffsetDateTime = tx.query_one("SELECT now()", &[]).await.expect("now").get(0);
    tx.commit().await.expect("commit");
    for (id, version) in [(first, 5), (second, 2)] {
        let row = client.query_one(read, &[&id]).await.expect("select");
        assert_eq!(row.get::<_, i32>(0), version);
        assert_eq!(row.get::<_, time::OffsetDateTime>(2), now);
    }

    // A version below 1 breaks the column's rule before the trigger runs
    // (V6: the rules are domains): refused, and nothing changes.
    let error = client
        .execute("UPDATE projects SET version = 0 WHERE id = $1", &[&first])
        .await
        .expect_err("a version below 1");
    assert!(
        matches!(StoreError::from(error), StoreError::Check { constraint: Some(ref c) } if c == "projects_version_check")
    );
    let error = client
        .execute(
            "INSERT INTO projects (id, owner_id, name, version) VALUES ($1, $2, 'P', 0)",
            &[&Uuid::now_v7(), user.id.as_uuid()],
        )
        .await
        .expect_err("a new project at version 0");
    assert!(
        matches!(StoreError::from(error), StoreError::Check { constraint: Some(ref c) } if c == "projects_version_check")
    );
    let row = client.query_one(read, &[&first]).await.expect("select");
    assert_eq!(row.get::<_, i32>(0), 5);
}

#[tokio::test]
async fn every_rule_of_a_project_column_holds_for_direct_sql() {
    // The rules are domains since V6; each still refuses a bad value by
    // any statement, under its old constraint name.
    let db = TestDb::new().await;
    let client = db.client().await;
    let user = db
        .store()
        .users()
        .insert(&new_user("r@example.com"))
        .await
        .expect("user");
    let id = insert_project(&client, user.id).await;
    let cases = [
        ("name = ''", "projects_name_check"),
        ("name = repeat('n', 201)", "projects_name_check"),
        ("name = '  ' || repeat('n', 199)", "projects_name_check"),
        (
            "description = repeat('d', 5001)",
            "projects_description_check",
        ),
        ("status = 'deleted'", "projects_status_check"),
        ("status = upper(status)", "projects_status_check"),
        ("version = -5", "projects_version_check"),
    ];
    for (set, constraint) in cases {
        let error = client
            .execute(&format!("UPDATE projects SET {set} WHERE id = $1"), &[&id])
            .await
            .expect_err(set);
        assert!(
            matches!(StoreError::from(error), StoreError::Check { constraint: Some(ref c) } if c == constraint),
            "{set}"
        );
    }
    // At the limits: accepted.
    client
        .execute(
            "UPDATE projects SET name = repeat('n', 200), description = repeat('d', 5000), \
             status = 'completed' WHERE id = $1",
            &[&id],
        )
        .await
        .expect("values at the limits");
}

#[tokio::test]
async fn a_description_update_stays_on_its_page_when_the_page_is_full() {
    // Pages of projects keep room for new row versions (fillfactor), so an
    // update that changes no indexed column is a heap-only tuple: no new
    // entry in the table's five indexes. Without that room, the first
    // update of a row on a page filled by one insert moves it elsewhere.
    let db = TestDb::new().await;
    let mut client = db.client().await;
    let user = db
        .store()
        .users()
        .insert(&new_user("h@example.com"))
        .await
        .expect("user");
    client
        .execute(
            "INSERT INTO projects (id, owner_id, name, description) \
             SELECT gen_random_uuid(), $1, 'Project ' || n, repeat('d', 100) \
             FROM generate_series(1, 200) AS n",
            &[user.id.as_uuid()],
        )
        .await
        .expect("fill pages");
    let tx = client.transaction().await.expect("begin");
    let updated = tx
        .execute(
            "UPDATE projects SET description = repeat('e', 100) \
             WHERE ctid = '(0,1)'::tid",
            &[],
        )
        .await
        .expect("update");
    assert_eq!(updated, 1);
    let hot: i64 = tx
        .query_one(
            "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'projects'",
            &[],
        )
        .await
        .expect("stats")
        .get(0);
    assert_eq!(hot, 1, "the new version stayed on the first page");
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_text_value_of_the_wrong_form_is_invalid_input() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let error = client
        .execute("SELECT $1::text::uuid", &[&"not-a-uuid"])
        .await
        .expect_err("bad uuid text must fail");
    assert!(matches!(
        StoreError::from(error),
        StoreError::InvalidInput(_)
    ));
}

#[tokio::test]
async fn a_migrated_database_is_ready_and_migrating_again_applies_nothing() {
    let db = TestDb::new().await;
    assert!(db.store().ready().await.expect("ready check"));
    assert_eq!(db.store().migrate().await.expect("migrate"), 0);
}

#[tokio::test]
async fn an_empty_database_is_not_ready_until_migrated() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute("DROP TABLE refinery_schema_history")
        .await
        .expect("forget the migrations");
    assert!(!db.store().ready().await.expect("ready check"));
}
