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
