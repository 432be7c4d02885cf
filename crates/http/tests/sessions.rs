//! `/api/v1/auth/sessions` and the revocation of access tokens, driven
//! in-process over a real PostgreSQL (and a real Redis for the pub/sub
//! path): the list and its paging, ending one, all but the current, or all;
//! hostile input; endings racing refreshes; and two instances of the app
//! over one database, where an ending through one makes the session's
//! access token 401 on the other within a second.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use projects_http::revocations::POLL_INTERVAL;
use projects_testkit::{TEST_PASSWORD, TestApp, TestUser};
use secrecy::SecretString;
use serde_json::{Value, json};

const SESSIONS: &str = "/api/v1/auth/sessions";

async fn login(app: &TestApp, user: &TestUser) -> Value {
    app.login(&user.email, TEST_PASSWORD).await.1
}

fn access(tokens: &Value) -> Option<&str> {
    tokens["access_token"].as_str()
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|session| session["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The ids of `user`'s live sessions, as their own list shows them.
async fn listed(app: &TestApp, user: &TestUser) -> Vec<String> {
    ids(&app.get(SESSIONS, Some(&user.access_token)).await.body)
}

/// The status `GET /users/me` gets with `token`.
async fn me(app: &TestApp, token: Option<&str>) -> StatusCode {
    app.get("/api/v1/users/me", token).await.status
}

/// `user` ends their session `sid`.
async fn end(app: &TestApp, user: &TestUser, sid: &str) -> projects_testkit::TestResponse {
    app.delete(&format!("{SESSIONS}/{sid}"), Some(&user.access_token))
        .await
}

/// The session id of a tokens object's access token.
fn session_of(tokens: &Value) -> String {
    sid(access(tokens).expect("token"))
}

/// The session id (`sid`) of an access token, read from its payload.
fn sid(access_token: &str) -> String {
    use base64::Engine as _;
    let payload = access_token.split('.').nth(1).expect("a JWT");
    let json: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("json");
    json["sid"].as_str().expect("a sid claim").to_owned()
}

#[actix_web::test]
async fn the_list_shows_live_sessions_newest_first_with_the_current_one_marked() {
    let app = TestApp::new().await;
    let user = app.user().await;
    // A login from a known client: its user agent and address are kept.
    let login = app
        .send(
            TestRequest::post()
                .uri("/api/v1/auth/login")
                .peer_addr("203.0.113.7:50000".parse().expect("addr"))
                .insert_header(("User-Agent", format!("Firefox/{}", "x".repeat(1_000))))
                .insert_header(("Content-Type", "application/json"))
                .set_payload(json!({ "email": user.email, "password": TEST_PASSWORD }).to_string())
                .to_request(),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    let second = &login.body["tokens"];
    let third = self::login(&app, &user).await;

    let page = app.get(SESSIONS, access(second)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    let listed = ids(&page.body);
    assert_eq!(
        listed,
        [
            session_of(&third),
            session_of(second),
            sid(&user.access_token)
        ],
        "newest first"
    );
    assert_eq!(page.body["next_cursor"], Value::Null);
    let data = page.body["data"].as_array().expect("data");
    let current: Vec<bool> = data
        .iter()
        .map(|session| session["current"].as_bool().expect("current"))
        .collect();
    assert_eq!(current, [false, true, false]);
    let mine = &data[1];
    assert_eq!(mine["ip"], "203.0.113.7");
    let agent = mine["user_agent"].as_str().expect("a user agent");
    assert!(agent.starts_with("Firefox/") && agent.chars().count() == 256);
    for field in ["created_at", "last_used_at", "expires_at"] {
        let value = mine[field].as_str().expect(field);
        assert!(value.ends_with('Z'), "{field}: {value}");
    }
    assert_eq!(
        data[0].as_object().map(|o| o.len()),
        Some(7),
        "id, created_at, last_used_at, expires_at, user_agent, ip, current"
    );
    // Nothing secret in it.
    assert!(!page.text.contains(&user.refresh_token));

    // Someone else sees only their own.
    let other = app.user().await;
    let theirs = app.get(SESSIONS, Some(&other.access_token)).await;
    assert_eq!(ids(&theirs.body), [sid(&other.access_token)]);
}

#[actix_web::test]
async fn the_list_pages_with_signed_cursors() {
    let app = TestApp::new().await;
    let user = app.user().await;
    for _ in 0..4 {
        login(&app, &user).await;
    }
    let mut seen = Vec::new();
    let mut path = format!("{SESSIONS}?limit=2");
    for _ in 0..10 {
        let page = app.get(&path, Some(&user.access_token)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let batch = ids(&page.body);
        assert!(batch.len() <= 2);
        seen.extend(batch);
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = page.header("link").expect("a Link header");
                assert_eq!(
                    link,
                    format!("<{SESSIONS}?limit=2&cursor={cursor}>; rel=\"next\"")
                );
                path = format!("{SESSIONS}?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, no repeats");

    for bad in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=forged",
        "cursor=",
    ] {
        let response = app
            .get(&format!("{SESSIONS}?{bad}"), Some(&user.access_token))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(response.body["detail"].as_str().is_some(), "{bad}");
    }
    // Another list's cursor (users) is refused too.
    let codec = projects_http::CursorCodec::from_secret(
        projects_testkit::TEST_JWT_SECRET.as_bytes(),
        "users",
    );
    let foreign = codec.encode(&uuid::Uuid::now_v7());
    let response = app
        .get(
            &format!("{SESSIONS}?cursor={foreign}"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get(SESSIONS, None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn ending_one_session_kills_its_tokens_and_nobody_else_s() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let phone = login(&app, &user).await;
    let phone_sid = session_of(&phone);
    let other = app.user().await;

    // Hostile ids: not a UUID, someone else's, an unknown one.
    for (path, status) in [
        (format!("{SESSIONS}/not-a-uuid"), StatusCode::BAD_REQUEST),
        (format!("{SESSIONS}/%2e%2e"), StatusCode::BAD_REQUEST),
        (
            format!("{SESSIONS}/{}", "9".repeat(5_000)),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("{SESSIONS}/{}", sid(&other.access_token)),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("{SESSIONS}/{}", uuid::Uuid::now_v7()),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let response = app.delete(&path, Some(&user.access_token)).await;
        assert_eq!(response.status, status, "{path}");
    }
    // The other user's session survived the attempt.
    assert_eq!(me(&app, Some(&other.access_token)).await, StatusCode::OK);
    assert_eq!(
        app.refresh(&other.refresh_token).await.status,
        StatusCode::OK
    );

    let ended = end(&app, &user, &phone_sid).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT, "{}", ended.text);
    assert!(ended.text.is_empty());
    let refused = app.get("/api/v1/users/me", access(&phone)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused
            .header("www-authenticate")
            .is_some_and(|challenge| challenge.starts_with("Bearer"))
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("session")),
        "{}",
        refused.text
    );
    assert_eq!(
        app.refresh(phone["refresh_token"].as_str().expect("token"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Ending it again: it is no longer there.
    assert_eq!(
        end(&app, &user, &phone_sid).await.status,
        StatusCode::NOT_FOUND
    );
    // The caller's own session is untouched.
    assert_eq!(listed(&app, &user).await, [sid(&user.access_token)]);
}

#[actix_web::test]
async fn ending_the_current_session_then_using_its_access_token_is_401() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let response = end(&app, &user, &sid(&user.access_token)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    for path in ["/api/v1/users/me", "/api/v1/projects", SESSIONS] {
        assert_eq!(
            app.get(path, Some(&user.access_token)).await.status,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }
    assert_eq!(
        app.refresh(&user.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn ending_all_others_keeps_the_current_one_unless_asked() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let laptop = login(&app, &user).await;
    let phone = login(&app, &user).await;
    let other = app.user().await;

    for bad in ["include_current=yes", "include_current=", "all=true"] {
        let response = app
            .delete(&format!("{SESSIONS}?{bad}"), Some(&user.access_token))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let response = app.delete(SESSIONS, Some(&user.access_token)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    for tokens in [&laptop, &phone] {
        assert_eq!(me(&app, access(tokens)).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(listed(&app, &user).await, [sid(&user.access_token)]);
    // Nobody else's sessions ended.
    assert_eq!(me(&app, Some(&other.access_token)).await, StatusCode::OK);
    // Again: nothing left to end, still 204.
    assert_eq!(
        app.delete(
            &format!("{SESSIONS}?include_current=false"),
            Some(&user.access_token)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    let all = app
        .delete(
            &format!("{SESSIONS}?include_current=true"),
            Some(&user.access_token),
        )
        .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    assert_eq!(
        me(&app, Some(&user.access_token)).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&user.refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// An ending racing a refresh of the same session, many times: whatever
/// the order, once the DELETE has answered no refresh token of the session
/// works, not even the one the racing refresh handed out.
#[actix_web::test]
async fn ending_a_session_while_it_refreshes_leaves_no_working_token() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let mut refreshes_won = 0;
    for _ in 0..15 {
        let victim = login(&app, &user).await;
        let victim_sid = session_of(&victim);
        let token = victim["refresh_token"].as_str().expect("token").to_owned();
        let (rotated, ended) = tokio::join!(app.refresh(&token), end(&app, &user, &victim_sid));
        assert_eq!(ended.status, StatusCode::NO_CONTENT);
        let mut candidates = vec![token];
        if rotated.status == StatusCode::OK {
            refreshes_won += 1;
            candidates.push(
                rotated.body["tokens"]["refresh_token"]
                    .as_str()
                    .expect("token")
                    .to_owned(),
            );
            assert_eq!(
                me(&app, rotated.body["tokens"]["access_token"].as_str()).await,
                StatusCode::UNAUTHORIZED,
                "the access token the racing refresh got is refused too"
            );
        }
        for candidate in candidates {
            assert_eq!(
                app.refresh(&candidate).await.status,
                StatusCode::UNAUTHORIZED
            );
        }
    }
    eprintln!("the racing refresh committed first in {refreshes_won} of 15 rounds");
}

/// Polls `app` with `token` until it is refused; the time it took.
async fn until_refused(app: &TestApp, token: &str) -> Duration {
    let started = Instant::now();
    loop {
        let status = app.get("/api/v1/projects", Some(token)).await.status;
        if status == StatusCode::UNAUTHORIZED {
            return started.elapsed();
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the other instance still accepts the token after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Instance A ends a session (and deletes a user); instance B, with its own
/// set, refuses their access tokens within a second.
async fn endings_reach_the_other_instance(redis: Option<SecretString>) {
    let a = TestApp::new().await;
    let b = a.another_instance().await;
    let store = a.db.store().clone();
    // With Redis, the poll runs once at start and then not for an hour: only
    // pub/sub can deliver within the second.
    let interval = if redis.is_some() {
        Duration::from_secs(3_600)
    } else {
        POLL_INTERVAL
    };
    let mut tasks = Vec::new();
    for app in [&a, &b] {
        let cursor = app.state.revocations.reload(&store).await.expect("reload");
        tasks.extend(
            app.state
                .revocations
                .follow(store.clone(), redis.as_ref(), cursor, interval)
                .expect("follow"),
        );
    }
    let user = a.user().await;
    let admin = a.admin().await;
    if redis.is_some() {
        // Wait until B's subscription delivers (a message published before
        // it subscribed would be lost; the poll is not running).
        let mut delivered = false;
        for _ in 0..20 {
            let probe = login(&a, &user).await;
            end(&a, &user, &session_of(&probe)).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
            if b.get("/api/v1/projects", access(&probe)).await.status == StatusCode::UNAUTHORIZED {
                delivered = true;
                break;
            }
        }
        assert!(delivered, "B never received an ending through Redis");
    }

    let phone = login(&a, &user).await;
    let phone_sid = session_of(&phone);
    assert_eq!(
        b.get("/api/v1/projects", access(&phone)).await.status,
        StatusCode::OK
    );
    let ended = end(&a, &user, &phone_sid).await;
    assert_eq!(ended.status, StatusCode::NO_CONTENT);
    let session_delay = until_refused(&b, access(&phone).expect("token")).await;

    let path = format!("/api/v1/users/{}", user.id);
    assert_eq!(
        a.delete(&path, Some(&admin.access_token)).await.status,
        StatusCode::NO_CONTENT
    );
    let deletion_delay = until_refused(&b, &user.access_token).await;
    eprintln!(
        "revocation reached the other instance ({}): session ended in {session_delay:?}, \
         user deleted in {deletion_delay:?}",
        if redis.is_some() {
            "Redis"
        } else {
            "feed poll"
        }
    );
    assert!(session_delay < Duration::from_secs(1), "{session_delay:?}");
    assert!(
        deletion_delay < Duration::from_secs(1),
        "{deletion_delay:?}"
    );

    // An instance that starts now loads the endings before it serves.
    let c = a.another_instance().await;
    c.state.revocations.reload(&store).await.expect("reload");
    for token in [access(&phone).expect("token"), user.access_token.as_str()] {
        assert_eq!(
            c.get("/api/v1/projects", Some(token)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    for task in tasks {
        task.abort();
    }
}

#[actix_web::test]
async fn an_ending_reaches_the_other_instance_within_a_second_through_the_feed() {
    endings_reach_the_other_instance(None).await;
}

#[actix_web::test]
#[ignore = "needs Redis (REDIS_URL); `just test` runs it when one is available"]
async fn an_ending_reaches_the_other_instance_within_a_second_through_redis() {
    let url = std::env::var("REDIS_URL").expect("REDIS_URL for the Redis tests");
    endings_reach_the_other_instance(Some(url.into())).await;
}
