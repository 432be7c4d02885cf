//! Create, read, update and delete; ownership; validation; `If-Match`.

use actix_web::http::StatusCode;
use projects_testkit::{TestApp, TestUser};
use serde_json::{Value, json};

pub async fn create(app: &TestApp, owner: &TestUser, body: Value) -> Value {
    let response = app
        .post_json("/api/v1/projects", Some(&owner.access_token), &body)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    response.body
}

fn path(project: &Value) -> String {
    format!(
        "/api/v1/projects/{}",
        project["id"].as_str().expect("an id")
    )
}

#[actix_web::test]
async fn create_answers_201_with_location_and_etag_and_the_caller_as_owner() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let response = app
        .post_json(
            "/api/v1/projects",
            Some(&ada.access_token),
            &json!({ "name": "  Apollo  ", "description": "to the moon" }),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED);
    let body = &response.body;
    assert_eq!(body["name"], "Apollo", "stored trimmed");
    assert_eq!(body["owner_id"], ada.id.to_string());
    assert_eq!(body["status"], "active");
    assert_eq!(body["version"], 1);
    assert_eq!(body["description"], "to the moon");
    assert!(
        body["created_at"]
            .as_str()
            .is_some_and(|at| at.ends_with('Z'))
    );
    assert_eq!(body.as_object().map(|o| o.len()), Some(8));
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(response.header("location"), Some(path(body).as_str()));

    let fetched = app.get(&path(body), Some(&ada.access_token)).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.header("etag"), Some("\"1\""));
    assert_eq!(&fetched.body, body);

    let anonymous = app.get(&path(body), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn every_violation_is_reported_together_and_control_characters_are_422() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let response = app
        .post_json(
            "/api/v1/projects",
            Some(&ada.access_token),
            &json!({ "name": "   ", "description": "x".repeat(5_001), "status": "deleted" }),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    let mut fields: Vec<&str> = response.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["field"].as_str())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["description", "name", "status"]);

    let missing = app
        .post_json("/api/v1/projects", Some(&ada.access_token), &json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.body["errors"][0]["field"], "name");

    for body in [
        json!({ "name": "Apo\u{0}llo" }),
        json!({ "name": "Apollo", "description": "a\u{0}b" }),
        json!({ "name": "Apo\nllo" }),
    ] {
        let response = app
            .post_json("/api/v1/projects", Some(&ada.access_token), &body)
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let multiline = create(&app, &ada, json!({ "name": "A", "description": "a\nb\tc" })).await;
    assert_eq!(multiline["description"], "a\nb\tc");
    let max = create(
        &app,
        &ada,
        json!({ "name": "é".repeat(200), "description": "ü".repeat(5_000) }),
    )
    .await;
    assert_eq!(max["name"].as_str().map(|n| n.chars().count()), Some(200));
}

#[actix_web::test]
async fn ids_owners_and_versions_cannot_be_mass_assigned() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let forged = json!({
        "name": "Apollo",
        "id": "0192e3f0-0000-7000-8000-000000000000",
        "owner_id": bob.id.to_string(),
        "version": 99,
    });
    let response = app
        .post_json("/api/v1/projects", Some(&ada.access_token), &forged)
        .await;
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut unknown: Vec<(&str, &str)> = response.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap_or(""),
                e["code"].as_str().unwrap_or(""),
            )
        })
        .collect();
    unknown.sort_unstable();
    assert_eq!(
        unknown,
        [
            ("id", "unknown_field"),
            ("owner_id", "unknown_field"),
            ("version", "unknown_field")
        ]
    );
    let mine = app.get("/api/v1/projects", Some(&ada.access_token)).await;
    assert_eq!(mine.body["data"], json!([]), "nothing was created");

    let project = create(&app, &ada, json!({ "name": "Apollo" })).await;
    for field in ["id", "owner_id", "version", "created_at", "updated_at"] {
        let response = app
            .patch_json(
                &path(&project),
                Some(&ada.access_token),
                &json!({ field: bob.id.to_string(), "name": "X" }),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        assert_eq!(response.body["errors"][0]["field"], field);
        assert_eq!(response.body["errors"][0]["code"], "unknown_field");
    }
    let unchanged = app.get(&path(&project), Some(&ada.access_token)).await;
    assert_eq!(unchanged.body, project);
}

#[actix_web::test]
async fn another_users_project_is_404_on_every_verb_and_stays_unchanged() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let project = create(&app, &ada, json!({ "name": "Apollo", "description": "d" })).await;
    let url = path(&project);

    let get = app.get(&url, Some(&bob.access_token)).await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    assert_eq!(get.header("content-type"), Some("application/problem+json"));
    let patch = app
        .patch_json(
            &url,
            Some(&bob.access_token),
            &json!({ "name": "Hijacked" }),
        )
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    let patch_if_match = app
        .patch_json_with(
            &url,
            Some(&bob.access_token),
            &json!({ "name": "Hijacked" }),
            &[("If-Match", "\"7\"")],
        )
        .await;
    assert_eq!(
        patch_if_match.status,
        StatusCode::NOT_FOUND,
        "404, never 412, for the invisible"
    );
    let delete = app.delete(&url, Some(&bob.access_token)).await;
    assert_eq!(delete.status, StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/projects", Some(&bob.access_token)).await;
    assert_eq!(listed.body["data"], json!([]));

    let unchanged = app.get(&url, Some(&ada.access_token)).await;
    assert_eq!(unchanged.status, StatusCode::OK);
    assert_eq!(unchanged.body, project);
}

#[actix_web::test]
async fn an_admin_may_act_on_any_project() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let root = app.admin().await;
    let project = create(&app, &ada, json!({ "name": "Apollo" })).await;
    let url = path(&project);
    assert_eq!(
        app.get(&url, Some(&root.access_token)).await.status,
        StatusCode::OK
    );
    let patched = app
        .patch_json(
            &url,
            Some(&root.access_token),
            &json!({ "status": "completed" }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(
        patched.body["owner_id"],
        ada.id.to_string(),
        "the owner stays"
    );
    assert_eq!(
        app.delete(&url, Some(&root.access_token)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&url, Some(&ada.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_path_id_that_is_not_a_uuid_is_400() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    for response in [
        app.get("/api/v1/projects/42", Some(&ada.access_token))
            .await,
        app.patch_json(
            "/api/v1/projects/not-a-uuid",
            Some(&ada.access_token),
            &json!({}),
        )
        .await,
        app.delete("/api/v1/projects/0192", Some(&ada.access_token))
            .await,
    ] {
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.text
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(response.body["detail"], "the id in the path is not a UUID");
    }
}

#[actix_web::test]
async fn patch_changes_only_what_is_sent() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let project = create(
        &app,
        &ada,
        json!({ "name": "Apollo", "description": "d", "status": "archived" }),
    )
    .await;
    let url = path(&project);

    let renamed = app
        .patch_json(
            &url,
            Some(&ada.access_token),
            &json!({ "name": " Gemini " }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK);
    assert_eq!(renamed.header("etag"), Some("\"2\""));
    assert_eq!(renamed.body["name"], "Gemini");
    assert_eq!(renamed.body["description"], "d");
    assert_eq!(renamed.body["status"], "archived");
    assert_eq!(renamed.body["version"], 2);
    assert_eq!(renamed.body["created_at"], project["created_at"]);

    let cleared = app
        .patch_json(
            &url,
            Some(&ada.access_token),
            &json!({ "description": null }),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK);
    assert!(cleared.body["description"].is_null());
    assert_eq!(cleared.body["name"], "Gemini");

    // `{}` is a no-op: 200 with the project as it is, version unchanged.
    let empty = app
        .patch_json(&url, Some(&ada.access_token), &json!({}))
        .await;
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body, cleared.body);

    for invalid in [
        json!({ "name": null }),
        json!({ "name": "" }),
        json!({ "status": "gone" }),
    ] {
        let response = app
            .patch_json(&url, Some(&ada.access_token), &invalid)
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{invalid}"
        );
    }
    let after = app.get(&url, Some(&ada.access_token)).await;
    assert_eq!(after.body, cleared.body);
}

#[actix_web::test]
async fn a_stale_if_match_is_412_and_changes_nothing() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let project = create(&app, &ada, json!({ "name": "Apollo" })).await;
    let url = path(&project);
    let token = Some(ada.access_token.as_str());

    let first = app
        .patch_json_with(
            &url,
            token,
            &json!({ "name": "Gemini" }),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("etag"), Some("\"2\""));

    // A second writer still holding version 1 loses.
    for stale in ["\"1\"", "W/\"2\"", "\"0\", \"1\""] {
        let response = app
            .patch_json_with(
                &url,
                token,
                &json!({ "name": "Mercury" }),
                &[("If-Match", stale)],
            )
            .await;
        assert_eq!(response.status, StatusCode::PRECONDITION_FAILED, "{stale}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
    let empty_stale = app
        .patch_json_with(&url, token, &json!({}), &[("If-Match", "\"1\"")])
        .await;
    assert_eq!(empty_stale.status, StatusCode::PRECONDITION_FAILED);
    let current = app.get(&url, token).await;
    assert_eq!(current.body, first.body, "the stale writes changed nothing");

    let malformed = app
        .patch_json_with(
            &url,
            token,
            &json!({ "name": "Mercury" }),
            &[("If-Match", "2")],
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);

    for matching in ["\"2\"", "*"] {
        let response = app
            .patch_json_with(
                &url,
                token,
                &json!({ "status": "completed" }),
                &[("If-Match", matching)],
            )
            .await;
        assert_eq!(response.status, StatusCode::OK, "{matching}");
    }
    let gone = app
        .patch_json_with(
            "/api/v1/projects/0192e3f0-0000-7000-8000-000000000000",
            token,
            &json!({ "name": "X" }),
            &[("If-Match", "\"1\"")],
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn delete_is_204_then_404() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let project = create(&app, &ada, json!({ "name": "Apollo" })).await;
    let url = path(&project);
    let first = app.delete(&url, Some(&ada.access_token)).await;
    assert_eq!(first.status, StatusCode::NO_CONTENT);
    assert!(first.text.is_empty());
    assert_eq!(
        app.delete(&url, Some(&ada.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&url, Some(&ada.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn a_demoted_admin_loses_access_at_once_despite_the_token() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let root = app.admin().await;
    let project = create(&app, &ada, json!({ "name": "Apollo" })).await;
    app.state
        .store
        .users()
        .set_role(root.id, projects_domain::Role::User)
        .await
        .expect("demote");
    // The token still claims `admin`; the database says otherwise.
    let url = path(&project);
    assert_eq!(
        app.get(&url, Some(&root.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&url, Some(&root.access_token)).await.status,
        StatusCode::NOT_FOUND
    );
    let everyone = app
        .get("/api/v1/projects?all=true", Some(&root.access_token))
        .await;
    assert_eq!(everyone.status, StatusCode::OK);
    assert_eq!(everyone.body["data"], json!([]));
    assert_eq!(
        app.get(&url, Some(&ada.access_token)).await.status,
        StatusCode::OK
    );
}
