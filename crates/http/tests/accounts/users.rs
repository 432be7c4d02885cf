//! `/api/v1/users/*`.

use actix_web::http::StatusCode;
use projects_testkit::{TEST_PASSWORD, TestApp};
use serde_json::{Value, json};

#[actix_web::test]
async fn me_shows_the_caller() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let response = app.get("/api/v1/users/me", Some(&user.access_token)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, user.json);
    assert_eq!(
        app.get("/api/v1/users/me", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_deleted_users_token_is_refused() {
    let app = TestApp::new().await;
    let user = app.user().await;
    app.state
        .store
        .users()
        .delete(user.id)
        .await
        .expect("delete");
    let response = app.get("/api/v1/users/me", Some(&user.access_token)).await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn patch_me_renames() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let response = app
        .patch_json(
            "/api/v1/users/me",
            Some(&user.access_token),
            &json!({ "name": "  New Name " }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["name"], "New Name");
    assert_eq!(response.body["role"], "user");
    assert_eq!(
        app.patch_json("/api/v1/users/me", None, &json!({ "name": "x" }))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn patch_me_changes_the_password_and_ends_every_other_session() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let (_, second_session) = app.login(&user.email, TEST_PASSWORD).await;
    let new_password = "a brand new horse battery staple";
    let response = app
        .patch_json(
            "/api/v1/users/me",
            Some(&user.access_token),
            &json!({ "password": new_password, "current_password": TEST_PASSWORD, "name": "Renamed" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["name"], "Renamed");
    // The other session has ended: its refresh and access tokens are dead.
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": second_session["refresh_token"] }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/api/v1/users/me", second_session["access_token"].as_str())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The session the change was made from goes on.
    assert_eq!(
        app.get("/api/v1/users/me", Some(&user.access_token))
            .await
            .status,
        StatusCode::OK
    );
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.text);
    let old = app
        .post_json(
            "/api/v1/auth/login",
            None,
            &json!({ "email": user.email, "password": TEST_PASSWORD }),
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    app.login(&user.email, new_password).await;
}

#[actix_web::test]
async fn patch_me_needs_the_right_current_password_and_refuses_role() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let token = Some(user.access_token.as_str());
    let cases = [
        (
            json!({ "password": "a brand new horse battery staple" }),
            "current_password",
            "required",
        ),
        (
            json!({ "password": "a brand new horse battery staple", "current_password": "not my password" }),
            "current_password",
            "incorrect",
        ),
        (
            json!({ "password": "password1", "current_password": TEST_PASSWORD }),
            "password",
            "weak_password",
        ),
        (json!({ "role": "admin" }), "role", "unknown_field"),
        (json!({ "name": "" }), "name", "length"),
    ];
    for (body, field, code) in cases {
        let response = app.patch_json("/api/v1/users/me", token, &body).await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            has_error(&response.body, field, code),
            "{body}: {}",
            response.text
        );
    }
    // Nothing changed.
    app.login(&user.email, TEST_PASSWORD).await;
    let me = app.get("/api/v1/users/me", token).await;
    assert_eq!(me.body["role"], "user");
}

fn has_error(body: &Value, field: &str, code: &str) -> bool {
    body["errors"].as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| e["field"] == field && e["code"] == code)
    })
}

#[actix_web::test]
async fn admins_list_users_in_keyset_pages() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let mut ids = vec![admin.id.to_string()];
    for _ in 0..4 {
        ids.push(app.user().await.id.to_string());
    }
    let token = Some(admin.access_token.as_str());
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let response = app.get(&path, token).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
        pages += 1;
        let data = response.body["data"].as_array().expect("data").clone();
        assert!(data.len() <= 2);
        seen.extend(
            data.iter()
                .map(|u| u["id"].as_str().expect("an id").to_owned()),
        );
        match response.body["next_cursor"].as_str() {
            Some(cursor) => {
                let link = response.header("link").expect("a Link header");
                assert!(
                    link.contains(cursor) && link.ends_with("rel=\"next\""),
                    "{link}"
                );
                path = format!("/api/v1/users?limit=2&cursor={cursor}");
            }
            None => {
                assert!(response.header("link").is_none());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "every user once, in id (creation) order");

    let all = app.get("/api/v1/users", token).await;
    assert_eq!(
        all.body["data"].as_array().map(Vec::len),
        Some(5),
        "default limit 20"
    );
    assert!(all.body["next_cursor"].is_null());
}

#[actix_web::test]
async fn listing_users_refuses_bad_parameters_and_non_admins() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let user = app.user().await;
    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=%21%21",
        "cursor=AAAA",
        // A bare id in base64url, unsigned: forged.
        "cursor=AZNvTo0qezyeHyo7TF1ufw",
    ] {
        let response = app
            .get(&format!("/api/v1/users?{query}"), Some(&admin.access_token))
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
    }
    // A cursor the server issued, but for another list.
    for name in ["Apollo", "Gemini"] {
        let created = app
            .post_json(
                "/api/v1/projects",
                Some(&admin.access_token),
                &serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let projects = app
        .get("/api/v1/projects?limit=1", Some(&admin.access_token))
        .await;
    let cursor = projects.body["next_cursor"].as_str().expect("a next page");
    let response = app
        .get(
            &format!("/api/v1/users?cursor={cursor}"),
            Some(&admin.access_token),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text
    );
    assert_eq!(
        app.get("/api/v1/users?limit=100", Some(&admin.access_token))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/users", Some(&user.access_token))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/v1/users", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = TestApp::new().await;
    let keeper = app.admin().await;
    let demoted = app.admin().await;
    let response = app
        .patch_json(
            &format!("/api/v1/users/{}", demoted.id),
            Some(&keeper.access_token),
            &json!({ "role": "user" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["role"], "user");
    // The demoted admin's token still says admin, and is not expired.
    let list = app.get("/api/v1/users", Some(&demoted.access_token)).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN);
    let other = app
        .get(
            &format!("/api/v1/users/{}", keeper.id),
            Some(&demoted.access_token),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn a_user_is_visible_to_itself_and_admins_only() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let path = format!("/api/v1/users/{}", ada.id);
    let own = app.get(&path, Some(&ada.access_token)).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body, ada.json);
    assert_eq!(
        app.get(&path, Some(&admin.access_token)).await.body,
        ada.json
    );
    let other = app.get(&path, Some(&bob.access_token)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    let unknown = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    assert_eq!(
        app.get(&unknown, Some(&admin.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&unknown, Some(&bob.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/api/v1/users/not-a-uuid", Some(&admin.access_token))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(app.get(&path, None).await.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn admins_update_role_and_name() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let path = format!("/api/v1/users/{}", user.id);
    let token = Some(admin.access_token.as_str());
    let response = app
        .patch_json(
            &path,
            token,
            &json!({ "role": "admin", "name": "Promoted" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["role"], "admin");
    assert_eq!(response.body["name"], "Promoted");
    assert_eq!(response.body["email"], user.json["email"]);

    let invalid = app
        .patch_json(&path, token, &json!({ "role": "root", "email": "x@y.z" }))
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(has_error(&invalid.body, "role", "type"), "{}", invalid.text);
    assert!(
        has_error(&invalid.body, "email", "unknown_field"),
        "{}",
        invalid.text
    );

    let unknown = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    assert_eq!(
        app.patch_json(&unknown, token, &json!({ "name": "x" }))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let plain = app.user().await;
    assert_eq!(
        app.patch_json(&path, Some(&plain.access_token), &json!({ "name": "x" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.patch_json(&path, None, &json!({ "name": "x" }))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn the_last_admin_cannot_be_demoted_or_deleted() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let path = format!("/api/v1/users/{}", admin.id);
    let token = Some(admin.access_token.as_str());
    let demote = app
        .patch_json(&path, token, &json!({ "role": "user" }))
        .await;
    assert_eq!(demote.status, StatusCode::CONFLICT, "{}", demote.text);
    let delete = app.delete(&path, token).await;
    assert_eq!(delete.status, StatusCode::CONFLICT);
    // Renaming, or re-asserting the admin role, is fine.
    let rename = app
        .patch_json(&path, token, &json!({ "name": "Root", "role": "admin" }))
        .await;
    assert_eq!(rename.status, StatusCode::OK);
}

#[actix_web::test]
async fn concurrent_demotions_of_the_last_two_admins_leave_one() {
    let app = TestApp::new().await;
    let first = app.admin().await;
    let second = app.admin().await;
    let demote = json!({ "role": "user" });
    let (first_path, second_path) = (
        format!("/api/v1/users/{}", first.id),
        format!("/api/v1/users/{}", second.id),
    );
    let (a, b) = tokio::join!(
        app.patch_json(&second_path, Some(&first.access_token), &demote),
        app.patch_json(&first_path, Some(&second.access_token), &demote),
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    // Either one demotion wins and the other is refused (409, or 403 when
    // its caller was demoted first); never zero admins.
    assert!(
        statuses == [200, 409] || statuses == [200, 403],
        "{statuses:?}"
    );
    let admins: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM users WHERE role = 'admin'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(admins, 1);
}

#[actix_web::test]
async fn deleting_a_user_cascades_to_projects_and_tokens() {
    let app = TestApp::new().await;
    let admin = app.admin().await;
    let user = app.user().await;
    let client = app.db.client().await;
    client
        .execute(
            "INSERT INTO projects (id, owner_id, name) VALUES ($1, $2, 'Apollo')",
            &[&uuid::Uuid::now_v7(), user.id.as_uuid()],
        )
        .await
        .expect("a project");
    let path = format!("/api/v1/users/{}", user.id);
    let other = app.user().await;
    assert_eq!(
        app.delete(&path, Some(&other.access_token)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&path, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let response = app.delete(&path, Some(&admin.access_token)).await;
    assert_eq!(response.status, StatusCode::NO_CONTENT);
    for table in ["projects", "sessions"] {
        let left: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {table} WHERE {} = $1",
                    if table == "projects" {
                        "owner_id"
                    } else {
                        "user_id"
                    }
                ),
                &[user.id.as_uuid()],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(left, 0, "{table}");
    }
    let refreshed = app
        .post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": user.refresh_token }),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::UNAUTHORIZED);
    // Its access token is refused at once, even where no route reads the
    // user (its sessions ended with the deletion).
    assert_eq!(
        app.get("/api/v1/projects", Some(&user.access_token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete(&path, Some(&admin.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete("/api/v1/users/nope", Some(&admin.access_token))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}
