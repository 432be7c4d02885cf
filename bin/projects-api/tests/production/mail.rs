//! The binary's job worker: mail jobs from the outbox reach a real SMTP
//! server (aiosmtpd over TCP) with the job id as Message-ID and a link whose
//! token only the server's secret can derive; a failing SMTP server leads
//! to retries and then the dead state; without SMTP_URL the messages are
//! `.eml` files and the server says where.

use std::time::{Duration, Instant};

use projects_auth::AccountTokenKey;
use projects_mail::{MAIL_JOB_KIND, MailJob, MailKind};
use projects_store::{JobState, NewJob, Store};
use projects_testkit::{FailingSmtpServer, SmtpServer, TestDb};
use uuid::Uuid;

use super::server::Server;

const SECRET: &str = "9c3f0a7e1b5d4c2a8e6f0b3d7a1c5e9f2b4d6a8c";

fn mail_job(to: &str, token_id: Uuid, max_attempts: i32) -> NewJob {
    let payload = MailJob {
        kind: MailKind::PasswordReset,
        to: to.into(),
        name: "Ada".into(),
        token_id: Some(token_id),
        valid_for: Some("30 minutes".into()),
    };
    NewJob::new(
        MAIL_JOB_KIND,
        serde_json::to_value(payload).unwrap(),
        max_attempts,
    )
}

async fn wait_for_state(store: &Store, id: Uuid, state: JobState, limit: Duration) {
    let started = Instant::now();
    loop {
        let job = store.jobs().find(id).await.unwrap();
        if job.state == state {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "job still {:?} after {limit:?}: {job:?}",
            job.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_worker_delivers_mail_jobs_over_smtp() {
    let db = TestDb::new().await;
    let smtp = SmtpServer::start().await;
    let server = Server::start(
        db.url(),
        &[
            ("SMTP_URL", &smtp.url()),
            ("PUBLIC_APP_URL", "https://app.test/"),
            ("MAIL_FROM", "Projects <no-reply@projects.test>"),
            ("JWT_SECRET", SECRET),
        ],
    )
    .await;
    let token_id = Uuid::now_v7();
    let id = db
        .store()
        .jobs()
        .enqueue(&mail_job("ada@example.com", token_id, 3))
        .await
        .unwrap();
    let mail = smtp
        .wait_for("ada@example.com", 1, Duration::from_secs(20))
        .await
        .remove(0);
    assert_eq!(mail.message_id(), format!("{id}@projects.test"));
    assert_eq!(mail.subject(), "Reset your password");
    let token = AccountTokenKey::new(SECRET.into()).token(token_id);
    assert!(
        mail.text().contains(&format!(
            "https://app.test/reset-password?token={}",
            token.expose()
        )),
        "{}",
        mail.text()
    );
    wait_for_state(db.store(), id, JobState::Done, Duration::from_secs(10)).await;
    let logs = server.logs().join("\n");
    assert!(logs.contains("sending mail"), "{logs}");
    assert!(!logs.contains("ada@example.com"), "an address in the logs");
    assert!(!logs.contains(token.expose()), "a token in the logs");
}

#[tokio::test]
async fn a_failing_smtp_server_leads_to_retries_then_the_dead_state() {
    let db = TestDb::new().await;
    let smtp = FailingSmtpServer::start().await;
    let _server = Server::start(db.url(), &[("SMTP_URL", &smtp.url())]).await;
    let id = db
        .store()
        .jobs()
        .enqueue(&mail_job("ada@example.com", Uuid::now_v7(), 2))
        .await
        .unwrap();
    // The retry comes 5 to 10 s after the first failure (the backoff's
    // first step, with jitter).
    wait_for_state(db.store(), id, JobState::Dead, Duration::from_secs(40)).await;
    let job = db.store().jobs().find(id).await.unwrap();
    assert_eq!(job.attempts, 2);
    assert_eq!(smtp.attempts(), 2);
    let error = job.last_error.unwrap_or_default();
    assert!(error.contains("451"), "{error}");
    assert!(!error.contains("ada@example.com"), "{error}");
}

#[tokio::test]
async fn without_smtp_url_mail_is_written_as_eml_files_and_the_server_says_where() {
    let db = TestDb::new().await;
    let dir = std::env::temp_dir().join(format!("pa-outbox-{}", Uuid::new_v4().simple()));
    let server = Server::start(db.url(), &[("MAIL_DIR", dir.to_str().unwrap())]).await;
    let logs = server.logs().join("\n");
    assert!(logs.contains("SMTP_URL is not set"), "{logs}");
    assert!(logs.contains(dir.to_str().unwrap()), "{logs}");
    let id = db
        .store()
        .jobs()
        .enqueue(&mail_job("ada@example.com", Uuid::now_v7(), 3))
        .await
        .unwrap();
    wait_for_state(db.store(), id, JobState::Done, Duration::from_secs(20)).await;
    let eml = std::fs::read_to_string(dir.join(format!("{id}.eml"))).unwrap();
    assert!(eml.contains("Subject: Reset your password"), "{eml}");
    std::fs::remove_dir_all(&dir).unwrap();
}
