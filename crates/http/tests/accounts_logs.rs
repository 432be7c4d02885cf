//! Logs never contain a password, a hash, a token or an e-mail address.
//!
//! A test binary of its own: it installs a global subscriber (tracing caches
//! per-callsite interest process-wide, so a thread-local subscriber in a
//! binary whose other tests run in parallel misses events), and it must be
//! the only test of its process.

use std::io::Write;
use std::sync::{Arc, Mutex};

use projects_testkit::{TEST_PASSWORD, TestApp, unique_email};
use serde_json::json;

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("the log buffer")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[actix_web::test]
async fn a_full_flow_logs_no_secret() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(buffer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let app = TestApp::new().await;
    let email = unique_email("Secretive");
    let (user, tokens) = app.register(&email, "Secretive", TEST_PASSWORD).await;
    let (_, tokens2) = app.login(&email, TEST_PASSWORD).await;
    let wrong = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": email, "password": "wrong horse battery staple" }),
        )
        .await;
    assert_eq!(wrong.status, 401);
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": tokens2["refresh_token"] }),
        )
        .await;
    assert_eq!(refreshed.status, 200);
    // A duplicate within the grace gets the same successor…
    let duplicate = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": tokens2["refresh_token"] }),
        )
        .await;
    assert_eq!(duplicate.status, 200);
    // …and after it, it is reuse.
    app.db
        .client()
        .await
        .execute(
            "UPDATE refresh_tokens SET used_at = used_at - interval '1 minute' \
             WHERE used_at IS NOT NULL",
            &[],
        )
        .await
        .expect("age the rotation");
    let reused = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": tokens2["refresh_token"] }),
        )
        .await;
    assert_eq!(reused.status, 401);
    let new_password = "a different horse, battery and staple";
    let changed = app
        .patch_json(
            "/api/v1/users/me",
            tokens["access_token"].as_str(),
            &json!({ "password": new_password, "current_password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let logout = app
        .post_json(
            "/api/v1/auth/logout",
            None,
            &json!({ "refresh_token": tokens["refresh_token"] }),
        )
        .await;
    assert_eq!(logout.status, 204);

    let hash: String = app
        .db
        .client()
        .await
        .query_one("SELECT password_hash FROM users", &[])
        .await
        .expect("the user")
        .get(0);
    let logs = String::from_utf8(buffer.0.lock().expect("the log buffer").clone()).expect("utf-8");
    assert!(
        logs.contains("authentication attempt"),
        "attempts are logged"
    );
    assert!(
        logs.contains(user["id"].as_str().expect("an id")),
        "with the user id"
    );
    let secrets = [
        TEST_PASSWORD,
        new_password,
        "wrong horse battery staple",
        &hash,
        tokens["access_token"].as_str().expect("a token"),
        tokens["refresh_token"].as_str().expect("a token"),
        tokens2["access_token"].as_str().expect("a token"),
        tokens2["refresh_token"].as_str().expect("a token"),
        refreshed.body["tokens"]["refresh_token"]
            .as_str()
            .expect("a token"),
        &email,
        &email.to_lowercase(),
    ];
    for secret in secrets {
        assert!(
            !logs.contains(secret),
            "the logs contain a secret: {secret}"
        );
    }
    // The audit line of the failed login carries the request's id, the one
    // its response carries (made up by the server: the client sent none).
    let wrong_id = wrong.header("x-request-id").expect("a request id");
    let audit_ids: Vec<Option<String>> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| {
            line["fields"]["message"] == "authentication attempt"
                && line["fields"]["auth.event"] == "login"
                && line["fields"]["auth.outcome"] == "failure"
        })
        .map(|line| line["fields"]["request_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        audit_ids,
        [Some(wrong_id.to_owned())],
        "the failed login's audit line has the response's request id"
    );
    // Responses never carry one either.
    for body in [&wrong.text, &reused.text, &changed.text] {
        assert!(!body.contains(TEST_PASSWORD) && !body.contains(&hash));
    }
}
