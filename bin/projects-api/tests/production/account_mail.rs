//! Account recovery and verification end to end: the real binary (with its
//! job worker) over a real PostgreSQL, mailing through a real SMTP server
//! (aiosmtpd over TCP). Each test reads the delivered message, takes the
//! link's token and completes the flow through the HTTP API.

use std::time::{Duration, Instant};

use projects_auth::PasswordHasher;
use projects_domain::{Email, Role};
use projects_store::NewUser;
use projects_testkit::{SmtpServer, TestDb};
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::server::Server;

const PASSWORD: &str = "correct horse battery staple";
const NEW_PASSWORD: &str = "a brand new passphrase, long enough";
const MAIL_WAIT: Duration = Duration::from_secs(20);

struct Setup {
    db: TestDb,
    smtp: SmtpServer,
    server: Server,
    http: reqwest::Client,
}

async fn setup(extra: &[(&str, &str)]) -> Setup {
    let db = TestDb::new().await;
    let smtp = SmtpServer::start().await;
    let smtp_url = smtp.url();
    let mut vars = vec![
        ("SMTP_URL", smtp_url.as_str()),
        ("PUBLIC_APP_URL", "https://app.test"),
        ("MAIL_FROM", "Projects <no-reply@projects.test>"),
        ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ("RATE_LIMIT_PER_SECOND", "0"),
    ];
    vars.extend_from_slice(extra);
    let server = Server::start(db.url(), &vars).await;
    Setup {
        db,
        smtp,
        server,
        http: reqwest::Client::new(),
    }
}

impl Setup {
    /// Sends `request`, with `bearer` if any; the status and the JSON body
    /// (null if there is none).
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        bearer: Option<&str>,
    ) -> (StatusCode, Value) {
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value, bearer: Option<&str>) -> (StatusCode, Value) {
        let request = self.http.post(self.server.url(path)).json(&body);
        self.send(request, bearer).await
    }

    async fn get_me(&self, bearer: &str) -> (StatusCode, Value) {
        let request = self.http.get(self.server.url("/api/v1/users/me"));
        self.send(request, Some(bearer)).await
    }

    async fn patch_me(&self, body: Value, bearer: &str) -> (StatusCode, Value) {
        let request = self
            .http
            .patch(self.server.url("/api/v1/users/me"))
            .json(&body);
        self.send(request, Some(bearer)).await
    }

    async fn request_reset(&self, email: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/password-reset",
            json!({ "email": email }),
            None,
        )
        .await
    }

    async fn confirm_reset(&self, token: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/password-reset/confirm",
            json!({ "token": token, "password": password }),
            None,
        )
        .await
    }

    async fn verify_email(&self, token: &str) -> (StatusCode, Value) {
        self.post("/api/v1/auth/verify-email", json!({ "token": token }), None)
            .await
    }

    async fn confirm_email_change(&self, token: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/email-change/confirm",
            json!({ "token": token }),
            None,
        )
        .await
    }

    /// A user created behind the API's back (no mail sent, unverified).
    async fn user(&self, email: &str) {
        let hash = PasswordHasher::default().hash(PASSWORD).await.unwrap();
        self.db
            .store()
            .users()
            .insert(&NewUser {
                email: Email::parse(email).unwrap(),
                name: "Ada Lovelace".into(),
                role: Role::User,
                password_hash: hash,
            })
            .await
            .unwrap();
    }

    async fn login(&self, email: &str, password: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/login",
            json!({ "email": email, "password": password }),
            None,
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.post(
            "/api/v1/auth/refresh",
            json!({ "refresh_token": refresh_token }),
            None,
        )
        .await
    }

    /// A user created behind the API's back, logged in: their access token.
    async fn signed_in_user(&self, email: &str) -> String {
        self.user(email).await;
        let (status, session) = self.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        session["tokens"]["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A user created behind the API's back who asked for a password
    /// reset: the token of the link mailed to them.
    async fn reset_token_of_new_user(&self, email: &str) -> String {
        self.user(email).await;
        self.request_reset(email).await;
        self.token(email, 1, "/reset-password").await
    }

    /// The token of the `n`th message (from 1) to `to`, whose link has `path`.
    async fn token(&self, to: &str, n: usize, path: &str) -> String {
        let mail = self.smtp.wait_for(to, n, MAIL_WAIT).await;
        mail[n - 1]
            .token(&format!("https://app.test{path}"))
            .unwrap_or_else(|| panic!("no {path} link in: {}", mail[n - 1].text()))
    }

    /// Waits until no job is queued or running, so that "no message came"
    /// means none will.
    async fn settle(&self) {
        let started = Instant::now();
        loop {
            let stats = self.db.store().jobs().stats().await.unwrap();
            if stats.queued == 0 && stats.running == 0 {
                return;
            }
            if started.elapsed() > MAIL_WAIT {
                let mut jobs = Vec::new();
                for kind in ["mail", "cleanup", "password_reset_request"] {
                    jobs.extend(
                        self.db
                            .store()
                            .jobs()
                            .list_by_kind(kind, 100)
                            .await
                            .unwrap(),
                    );
                }
                panic!("jobs did not settle: {stats:?}: {jobs:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn slug(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or_default()
}

#[tokio::test]
async fn registration_mails_a_verification_link_that_works_once() {
    let s = setup(&[]).await;
    let (status, body) = s
        .post(
            "/api/v1/auth/register",
            json!({ "email": "Ada@Example.com", "name": "Ada", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["email_verified"], false);
    let access = body["tokens"]["access_token"].as_str().unwrap().to_owned();
    let token = s.token("ada@example.com", 1, "/verify-email").await;

    // Tampered with: one character changed.
    let mut tampered = token.clone().into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for bad in [tampered.as_str(), "", "x", &"y".repeat(600)] {
        let (status, body) = s.verify_email(bad).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:.10}: {status} {body}"
        );
    }
    let (status, body) = s.verify_email(&tampered).await;
    assert_eq!(
        (status, slug(&body)),
        (StatusCode::BAD_REQUEST, "invalid-token")
    );

    let (status, body) = s.verify_email(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email_verified"], true);
    // Used: a replay is refused.
    let (status, body) = s.verify_email(&token).await;
    assert_eq!(
        (status, slug(&body)),
        (StatusCode::BAD_REQUEST, "invalid-token")
    );
    let (_, me) = s.get_me(&access).await;
    assert_eq!(me["email_verified"], true);
    // Verified: a resend sends nothing.
    let (status, _) = s
        .post("/api/v1/auth/verify-email/resend", json!({}), Some(&access))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    s.settle().await;
    assert_eq!(s.smtp.messages_to("ada@example.com").len(), 1);
}

#[tokio::test]
async fn a_failed_registration_queues_no_mail() {
    let s = setup(&[]).await;
    let body = json!({ "email": "twice@example.com", "name": "Ada", "password": PASSWORD });
    let (first, _) = s.post("/api/v1/auth/register", body.clone(), None).await;
    let (second, _) = s.post("/api/v1/auth/register", body, None).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::CONFLICT));
    let jobs = s.db.store().jobs().list_by_kind("mail", 10).await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "the conflicting registration queued a message"
    );
}

#[tokio::test]
async fn password_reset_ends_the_old_sessions_and_starts_a_new_one() {
    let s = setup(&[]).await;
    s.user("grace@example.com").await;
    let (_, old) = s.login("grace@example.com", PASSWORD).await;
    let old_refresh = old["tokens"]["refresh_token"].as_str().unwrap().to_owned();
    let old_access = old["tokens"]["access_token"].as_str().unwrap().to_owned();

    let (status, accepted) = s.request_reset("GRACE@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (unknown_status, unknown) = s.request_reset("nobody@example.com").await;
    assert_eq!(
        (unknown_status, &unknown),
        (status, &accepted),
        "an unknown address must be indistinguishable"
    );
    let token = s.token("grace@example.com", 1, "/reset-password").await;

    // The password rules apply (the strength estimate too), and a refused
    // password uses up nothing.
    let (status, body) = s.confirm_reset(&token, "password123").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["errors"].as_array().is_some_and(|errors| errors
            .iter()
            .any(|e| e["field"] == "password" && e["code"] == "weak_password")),
        "{body}"
    );
    let (status, body) = s.confirm_reset(&token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["email"], "grace@example.com");
    assert!(body["tokens"]["access_token"].is_string());

    // The old session is over, its access token at once (the revocation
    // set), its refresh token too; the new password works, the old one not.
    assert_eq!(s.get_me(&old_access).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(s.refresh(&old_refresh).await.0, StatusCode::UNAUTHORIZED);
    let new_refresh = body["tokens"]["refresh_token"].as_str().unwrap();
    let (status, _) = s.refresh(new_refresh).await;
    assert_eq!(status, StatusCode::OK, "{}", s.server.logs().join("\n"));
    assert_eq!(
        s.login("grace@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.login("grace@example.com", NEW_PASSWORD).await.0,
        StatusCode::OK
    );

    // Used: a replay changes nothing.
    let (status, body) = s.confirm_reset(&token, "yet another passphrase here").await;
    assert_eq!(
        (status, slug(&body)),
        (StatusCode::BAD_REQUEST, "invalid-token")
    );
    assert_eq!(
        s.login("grace@example.com", NEW_PASSWORD).await.0,
        StatusCode::OK
    );

    s.settle().await;
    assert!(s.smtp.messages_to("nobody@example.com").is_empty());
    let logs = s.server.logs().join("\n");
    assert!(!logs.contains("grace@example.com") && !logs.contains(&token));
}

#[tokio::test]
async fn two_confirmations_of_one_token_at_once_let_exactly_one_through() {
    let s = setup(&[]).await;
    let token = s.reset_token_of_new_user("race@example.com").await;
    let confirm = |password: &'static str| s.confirm_reset(&token, password);
    let (first, second) = tokio::join!(
        confirm("first racer passphrase wins"),
        confirm("second racer passphrase wins")
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::BAD_REQUEST]);
    let winner = if first.0 == StatusCode::OK {
        "first racer passphrase wins"
    } else {
        "second racer passphrase wins"
    };
    assert_eq!(s.login("race@example.com", winner).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_expired_reset_token_is_refused_and_changes_nothing() {
    let s = setup(&[]).await;
    let token = s.reset_token_of_new_user("late@example.com").await;
    s.db.client()
        .await
        .execute(
            "UPDATE account_tokens SET expires_at = now() - interval '1 second'",
            &[],
        )
        .await
        .unwrap();
    let (status, body) = s.confirm_reset(&token, NEW_PASSWORD).await;
    assert_eq!(
        (status, slug(&body)),
        (StatusCode::BAD_REQUEST, "invalid-token")
    );
    assert_eq!(
        s.login("late@example.com", PASSWORD).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn mail_to_one_address_is_limited_to_one_a_minute() {
    let s = setup(&[]).await;
    let access = s.signed_in_user("limit@example.com").await;
    let (first, _) = s
        .post("/api/v1/auth/verify-email/resend", json!({}), Some(&access))
        .await;
    let response = s
        .http
        .post(s.server.url("/api/v1/auth/verify-email/resend"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(first, StatusCode::ACCEPTED);
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    // A reset request within the minute is accepted but sends nothing.
    let (status, _) = s.request_reset("limit@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    s.settle().await;
    let mail = s.smtp.messages_to("limit@example.com");
    assert_eq!(mail.len(), 1, "only the first message goes out");
    // That one link works.
    let token = mail[0].token("https://app.test/verify-email").unwrap();
    assert_eq!(s.verify_email(&token).await.0, StatusCode::OK);
}

#[tokio::test]
async fn an_email_change_is_confirmed_from_the_new_address_and_noticed_at_the_old() {
    let s = setup(&[]).await;
    let access = s.signed_in_user("old@example.com").await;
    let (status, body) = s
        .patch_me(json!({ "email": "new@example.com" }), &access)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = s
        .patch_me(
            json!({ "email": "new@example.com", "current_password": "not the password" }),
            &access,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = s
        .patch_me(
            json!({ "email": "New@Example.com", "current_password": PASSWORD }),
            &access,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["email"], "old@example.com",
        "not changed before the link is used"
    );
    let token = s.token("new@example.com", 1, "/confirm-email-change").await;
    let (status, body) = s.confirm_email_change(&token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "new@example.com");
    assert_eq!(body["email_verified"], true);
    let notice = s.smtp.wait_for("old@example.com", 1, MAIL_WAIT).await;
    assert_eq!(notice[0].subject(), "Your email address was changed");
    assert_eq!(s.login("new@example.com", PASSWORD).await.0, StatusCode::OK);
    assert_eq!(
        s.login("old@example.com", PASSWORD).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.confirm_email_change(&token).await.0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn an_email_change_to_an_address_taken_meanwhile_is_a_conflict() {
    let s = setup(&[]).await;
    let access = s.signed_in_user("mover@example.com").await;
    let (status, _) = s
        .patch_me(
            json!({ "email": "wanted@example.com", "current_password": PASSWORD }),
            &access,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let token = s
        .token("wanted@example.com", 1, "/confirm-email-change")
        .await;
    s.user("wanted@example.com").await;
    let (status, body) = s.confirm_email_change(&token).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        s.login("mover@example.com", PASSWORD).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_required_verification_an_unverified_login_is_403_once_the_password_is_right() {
    let s = setup(&[("REQUIRE_VERIFIED_EMAIL", "true")]).await;
    s.user("unverified@example.com").await;
    let (status, _) = s.login("unverified@example.com", "wrong password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = s.login("unverified@example.com", PASSWORD).await;
    assert_eq!(
        (status, slug(&body)),
        (StatusCode::FORBIDDEN, "email-not-verified")
    );
}

#[tokio::test]
async fn a_huge_field_is_refused_before_any_work() {
    let s = setup(&[]).await;
    let huge = "a".repeat(100 * 1024);
    for (path, body) in [
        ("/api/v1/auth/password-reset", json!({ "email": huge })),
        (
            "/api/v1/auth/password-reset/confirm",
            json!({ "token": huge, "password": NEW_PASSWORD }),
        ),
        ("/api/v1/auth/verify-email", json!({ "token": huge })),
        (
            "/api/v1/auth/email-change/confirm",
            json!({ "token": huge }),
        ),
    ] {
        let (status, _) = s.post(path, body, None).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{path}");
    }
    // Nothing queued for these requests (the worker's periodic cleanup
    // may be).
    for kind in ["mail", "password_reset_request"] {
        assert!(
            s.db.store()
                .jobs()
                .list_by_kind(kind, 10)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

/// The timing of a reset request for a known and an unknown address: both
/// do the same work (one insert), so their medians must be close. The
/// bound is generous (the machine is shared); the figures are printed.
#[tokio::test]
async fn reset_requests_for_known_and_unknown_addresses_take_similar_time() {
    let s = setup(&[]).await;
    s.user("known@example.com").await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for round in 0..40 {
        for (address, samples) in [
            ("known@example.com", &mut known),
            ("unknown@example.com", &mut unknown),
        ] {
            let started = Instant::now();
            let (status, _) = s.request_reset(address).await;
            let elapsed = started.elapsed();
            assert_eq!(status, StatusCode::ACCEPTED);
            // The first rounds warm the connections up.
            if round >= 5 {
                samples.push(elapsed.as_secs_f64() * 1000.0);
            }
        }
    }
    let median = |samples: &mut Vec<f64>| {
        samples.sort_by(f64::total_cmp);
        samples[samples.len() / 2]
    };
    let (known_ms, unknown_ms) = (median(&mut known), median(&mut unknown));
    eprintln!(
        "password-reset request medians over {} requests each: known {known_ms:.2} ms, unknown {unknown_ms:.2} ms",
        known.len()
    );
    assert!(
        (known_ms - unknown_ms).abs() < 25.0,
        "known {known_ms:.2} ms vs unknown {unknown_ms:.2} ms"
    );
}
