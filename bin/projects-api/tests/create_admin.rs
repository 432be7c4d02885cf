//! `projects-api create-admin`, run as a process against a fresh database.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use projects_testkit::TestDb;

const PASSWORD: &str = "correct horse battery staple";

fn create_admin(db: &TestDb, args: &[&str], env_password: Option<&str>, stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_projects-api"));
    command
        .arg("create-admin")
        .args(args)
        .env("DATABASE_URL", db.url())
        .env_remove("ADMIN_PASSWORD")
        .env("LOG_FORMAT", "json")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = env_password {
        command.env("ADMIN_PASSWORD", password);
    }
    let mut child = command.spawn().expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write the password");
    child.wait_with_output().expect("the binary exits")
}

async fn role_of(db: &TestDb, email: &str) -> Option<String> {
    db.client()
        .await
        .query_opt("SELECT role FROM users WHERE email = $1", &[&email])
        .await
        .expect("query")
        .map(|row| row.get(0))
}

#[tokio::test]
async fn creates_an_admin_with_the_password_from_the_environment() {
    let db = TestDb::new().await;
    let output = create_admin(
        &db,
        &["--email", "Root@Example.com", "--name", "Root"],
        Some(PASSWORD),
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        role_of(&db, "root@example.com").await.as_deref(),
        Some("admin")
    );
    let hash: String = db
        .client()
        .await
        .query_one("SELECT password_hash FROM users", &[])
        .await
        .expect("the admin")
        .get(0);
    assert!(hash.starts_with("$argon2id$"));
    let all = [output.stdout, output.stderr].concat();
    assert!(!String::from_utf8_lossy(&all).contains(PASSWORD));
}

#[tokio::test]
async fn promotes_an_existing_user_with_the_password_from_stdin() {
    let db = TestDb::new().await;
    db.client()
        .await
        .execute(
            "INSERT INTO users (id, email, name, password_hash) VALUES ($1, 'ada@example.com', 'Ada', 'x')",
            &[&uuid::Uuid::now_v7()],
        )
        .await
        .expect("a user");
    let output = create_admin(
        &db,
        &["--email", "ADA@example.com", "--name", "Ignored"],
        None,
        &format!("{PASSWORD}\n"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        role_of(&db, "ada@example.com").await.as_deref(),
        Some("admin")
    );
    let count: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(count, 1);
}

#[tokio::test]
async fn refuses_weak_passwords_and_bad_emails_with_one_line() {
    let db = TestDb::new().await;
    for (args, password) in [
        (
            ["--email", "root@example.com", "--name", "Root"],
            "password1",
        ),
        (["--email", "not an address", "--name", "Root"], PASSWORD),
        (["--email", "root@example.com", "--name", "Root"], "short"),
    ] {
        let output = create_admin(&db, &args, Some(password), "");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            !stderr.contains(password) || password == PASSWORD,
            "{stderr}"
        );
    }
    let empty = create_admin(
        &db,
        &["--email", "root@example.com", "--name", "Root"],
        None,
        "",
    );
    assert!(!empty.status.success());
    assert_eq!(role_of(&db, "root@example.com").await, None);
}
