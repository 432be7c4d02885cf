//! The transports against a real SMTP server over TCP (aiosmtpd, started by
//! the testkit) and a real folder: what arrives, with which headers.

use std::time::Duration;

use projects_mail::{Letter, MailKind, Mailer, MailerConfig};
use projects_testkit::{FailingSmtpServer, SmtpServer};
use uuid::Uuid;

fn letter(kind: MailKind, to: &str, name: &str) -> Letter {
    Letter {
        kind,
        to: to.into(),
        name: name.into(),
        link: Some("http://app.test/reset-password?token=abcDEF-123_xyz".into()),
        valid_for: Some("30 minutes".into()),
    }
}

fn mailer(smtp_url: Option<String>, dir: &std::path::Path) -> Mailer {
    Mailer::new(&MailerConfig {
        smtp_url,
        from: "Projects <no-reply@projects.test>".into(),
        dir: dir.to_owned(),
    })
    .unwrap()
}

#[tokio::test]
async fn every_kind_arrives_over_smtp_with_its_subject_link_and_job_message_id() {
    let server = SmtpServer::start().await;
    let mailer = mailer(Some(server.url()), std::path::Path::new("unused"));
    assert!(
        mailer.describe().starts_with("SMTP to 127.0.0.1:"),
        "{}",
        mailer.describe()
    );
    for (n, kind) in MailKind::ALL.into_iter().enumerate() {
        let to = format!("person{n}@example.com");
        let id = Uuid::now_v7();
        mailer
            .send(id, &letter(kind, &to, "Ada Lovelace"))
            .await
            .unwrap();
        let mail = server
            .wait_for(&to, 1, Duration::from_secs(10))
            .await
            .remove(0);
        assert_eq!(mail.message_id(), format!("{id}@projects.test"));
        assert!(!mail.subject().is_empty());
        assert!(
            mail.text().contains("Hello Ada Lovelace"),
            "{}",
            mail.text()
        );
        assert!(
            mail.html().contains("Hello Ada Lovelace"),
            "{}",
            mail.html()
        );
        if kind != MailKind::EmailChanged {
            assert_eq!(
                mail.token("/reset-password").as_deref(),
                Some("abcDEF-123_xyz"),
                "{}",
                mail.text()
            );
        }
    }
}

#[tokio::test]
async fn a_name_with_line_breaks_cannot_add_headers() {
    let server = SmtpServer::start().await;
    let mailer = mailer(Some(server.url()), std::path::Path::new("unused"));
    let to = "victim@example.com";
    let name = "Eve\r\nBcc: attacker@evil.test\r\nSubject: pwned";
    mailer
        .send(Uuid::now_v7(), &letter(MailKind::PasswordReset, to, name))
        .await
        .unwrap();
    let mail = server
        .wait_for(to, 1, Duration::from_secs(10))
        .await
        .remove(0);
    assert!(server.messages_to("attacker@evil.test").is_empty());
    assert_eq!(mail.header("Bcc"), None);
    assert_eq!(mail.subject(), "Reset your password");
    let raw = String::from_utf8_lossy(&mail.raw);
    assert!(!raw.contains("\nBcc:"), "{raw}");
    // An address with a line break is refused before anything is sent.
    let refused = mailer
        .send(
            Uuid::now_v7(),
            &letter(
                MailKind::PasswordReset,
                "a@example.com\r\nBcc: b@evil.test",
                "A",
            ),
        )
        .await
        .unwrap_err();
    assert!(refused.is_permanent(), "{refused:?}");
}

#[tokio::test]
async fn without_smtp_messages_are_eml_files_named_by_job_and_rewritten_on_retry() {
    let dir = std::env::temp_dir().join(format!("pa-eml-{}", Uuid::new_v4().simple()));
    let mailer = mailer(None, &dir);
    assert_eq!(
        mailer.describe(),
        format!(".eml files in {}", dir.display())
    );
    let id = Uuid::now_v7();
    let sent = letter(MailKind::EmailVerification, "ada@example.com", "Ada");
    mailer.send(id, &sent).await.unwrap();
    mailer.send(id, &sent).await.unwrap();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files, vec![dir.join(format!("{id}.eml"))]);
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        raw.contains(&format!("Message-ID: <{id}@projects.test>")),
        "{raw}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_server_that_refuses_for_now_is_a_transient_error() {
    let server = FailingSmtpServer::start().await;
    let mailer = mailer(Some(server.url()), std::path::Path::new("unused"));
    let error = mailer
        .send(
            Uuid::now_v7(),
            &letter(MailKind::PasswordReset, "a@example.com", "A"),
        )
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
    assert_eq!(server.attempts(), 1);
    // Nobody listening: transient too.
    let closed = mailer_for_closed_port().await;
    let error = closed
        .send(
            Uuid::now_v7(),
            &letter(MailKind::PasswordReset, "a@example.com", "A"),
        )
        .await
        .unwrap_err();
    assert!(!error.is_permanent(), "{error:?}");
}

async fn mailer_for_closed_port() -> Mailer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    mailer(
        Some(format!("smtp://127.0.0.1:{port}")),
        std::path::Path::new("unused"),
    )
}
