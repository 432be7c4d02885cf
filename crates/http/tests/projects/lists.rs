//! `GET /api/v1/projects`: pages, sorts, filters, admin scopes, signed
//! cursors and the walk invariant.

use std::collections::HashSet;

use actix_web::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use projects_testkit::{TestApp, TestResponse, TestUser};
use serde_json::json;

use super::crud::create;

async fn list(app: &TestApp, user: &TestUser, query: &str) -> TestResponse {
    app.get(
        &format!("/api/v1/projects{query}"),
        Some(&user.access_token),
    )
    .await
}

fn names(response: &TestResponse) -> Vec<String> {
    response.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[actix_web::test]
async fn lists_sort_filter_and_page_with_a_link_header() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    for (name, status) in [
        ("charlie", "active"),
        ("alpha", "archived"),
        ("bravo", "active"),
    ] {
        create(&app, &ada, json!({ "name": name, "status": status })).await;
    }
    create(&app, &bob, json!({ "name": "delta" })).await;

    let default = list(&app, &ada, "").await;
    assert_eq!(default.status, StatusCode::OK);
    assert_eq!(
        names(&default),
        ["bravo", "alpha", "charlie"],
        "newest first"
    );
    assert!(default.body["next_cursor"].is_null());
    assert_eq!(default.header("link"), None);
    for (sort, expected) in [
        ("created_at", ["charlie", "alpha", "bravo"]),
        ("-created_at", ["bravo", "alpha", "charlie"]),
        ("name", ["alpha", "bravo", "charlie"]),
        ("-name", ["charlie", "bravo", "alpha"]),
    ] {
        let response = list(&app, &ada, &format!("?sort={sort}")).await;
        assert_eq!(names(&response), expected, "{sort}");
    }
    let active = list(&app, &ada, "?status=active&sort=name").await;
    assert_eq!(names(&active), ["bravo", "charlie"]);

    let first = list(&app, &ada, "?sort=name&limit=2").await;
    assert_eq!(names(&first), ["alpha", "bravo"]);
    let cursor = first.body["next_cursor"].as_str().expect("a next cursor");
    let link = first.header("link").expect("a Link header");
    assert_eq!(
        link,
        format!("</api/v1/projects?limit=2&sort=name&cursor={cursor}>; rel=\"next\"")
    );
    let next_url = link
        .strip_prefix('<')
        .and_then(|rest| rest.split_once('>'))
        .map(|(url, _)| url)
        .expect("a URL");
    let second = app.get(next_url, Some(&ada.access_token)).await;
    assert_eq!(names(&second), ["charlie"]);
    assert!(second.body["next_cursor"].is_null());
    assert_eq!(second.header("link"), None);
}

#[actix_web::test]
async fn bad_query_parameters_are_400() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    for query in [
        "?limit=0",
        "?limit=101",
        "?limit=abc",
        "?sort=id",
        "?status=gone",
        "?owner_id=12",
        "?all=yes",
        "?colour=red",
    ] {
        let response = list(&app, &ada, query).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
    let response = list(&app, &ada, "?limit=101").await;
    assert_eq!(
        response.body["detail"],
        "`limit` must be an integer from 1 to 100"
    );
    for query in ["?limit=1", "?limit=100"] {
        assert_eq!(
            list(&app, &ada, query).await.status,
            StatusCode::OK,
            "{query}"
        );
    }
}

#[actix_web::test]
async fn owner_id_and_all_are_for_admins_only() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    let root = app.admin().await;
    create(&app, &ada, json!({ "name": "ada's" })).await;
    create(&app, &bob, json!({ "name": "bob's" })).await;

    for query in [
        format!("?owner_id={}", bob.id),
        "?all=true".to_owned(),
        format!("?owner_id={}", ada.id),
    ] {
        let response = list(&app, &ada, &query).await;
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{query}");
    }
    // A user is refused the admin-only parameters before their combination
    // is checked.
    let both = list(&app, &ada, &format!("?all=true&owner_id={}", bob.id)).await;
    assert_eq!(both.status, StatusCode::FORBIDDEN);
    assert_eq!(names(&list(&app, &ada, "?all=false").await), ["ada's"]);

    assert_eq!(
        names(&list(&app, &root, &format!("?owner_id={}", bob.id)).await),
        ["bob's"]
    );
    assert_eq!(
        names(&list(&app, &root, "?all=true&sort=name").await),
        ["ada's", "bob's"]
    );
    assert_eq!(
        names(&list(&app, &root, "").await),
        Vec::<String>::new(),
        "an admin's own"
    );
    let both = list(&app, &root, &format!("?all=true&owner_id={}", bob.id)).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn tampered_foreign_and_malformed_cursors_are_400() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let bob = app.user().await;
    for n in 0..3 {
        create(&app, &ada, json!({ "name": format!("a{n}") })).await;
        create(&app, &bob, json!({ "name": format!("b{n}") })).await;
    }
    let first = list(&app, &ada, "?sort=name&limit=1").await;
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_owned();
    assert_eq!(
        list(&app, &ada, &format!("?sort=name&limit=1&cursor={cursor}"))
            .await
            .status,
        StatusCode::OK
    );

    // Flip one bit of the payload (say, in the name or the owner id).
    let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).expect("base64url");
    bytes[10] ^= 0x01;
    let tampered = URL_SAFE_NO_PAD.encode(&bytes);
    // A payload edited in plain sight with the old tag.
    let text = String::from_utf8_lossy(&bytes[..bytes.len() - 32])
        .replace(&ada.id.to_string(), &bob.id.to_string());
    let mut forged = text.into_bytes();
    forged.extend_from_slice(&bytes[bytes.len() - 32..]);
    let forged = URL_SAFE_NO_PAD.encode(&forged);

    for (who, query) in [
        (&ada, format!("?sort=name&limit=1&cursor={tampered}")),
        (&ada, format!("?sort=name&limit=1&cursor={forged}")),
        (&ada, "?sort=name&cursor=not-base64!".to_owned()),
        (&ada, "?sort=name&cursor=AAAA".to_owned()),
        (&ada, format!("?sort=name&cursor={}", "A".repeat(3_000))),
        // Right cursor, other list: another sort, another filter, another user.
        (&ada, format!("?sort=-name&cursor={cursor}")),
        (&ada, format!("?sort=name&status=active&cursor={cursor}")),
        (&bob, format!("?sort=name&cursor={cursor}")),
    ] {
        let response = list(&app, who, &query).await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{query}: {}",
            response.text
        );
        assert_eq!(
            response.header("content-type"),
            Some("application/problem+json")
        );
    }
}

/// Pages through each sort while projects are created and deleted through
/// the API between pages: every project that existed for the whole walk
/// shows exactly once.
#[actix_web::test]
async fn walking_a_list_never_repeats_or_skips_a_surviving_project() {
    let app = TestApp::new().await;
    let ada = app.user().await;
    let client = app.db.client().await;
    for sort in ["-created_at", "created_at", "name", "-name"] {
        client
            .batch_execute("DELETE FROM projects")
            .await
            .expect("clear");
        // Groups of equal names and equal creation times: ties by id.
        client
            .execute(
                "INSERT INTO projects (id, owner_id, name, created_at) \
                 SELECT gen_random_uuid(), $1, 'p' || (i / 3), \
                        timestamptz '2026-01-01' + (i / 3) * interval '1 second' \
                 FROM generate_series(1, 40) AS i",
                &[ada.id.as_uuid()],
            )
            .await
            .expect("seed");
        let initial: Vec<String> = client
            .query("SELECT id::text FROM projects", &[])
            .await
            .expect("ids")
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut doomed: Vec<String> = initial.iter().step_by(4).cloned().collect();
        let survivors: HashSet<String> = initial
            .iter()
            .filter(|id| !doomed.contains(id))
            .cloned()
            .collect();

        let mut seen = Vec::new();
        let mut query = format!("?sort={sort}&limit=6");
        let mut pages = 0;
        loop {
            let page = list(&app, &ada, &query).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.text);
            for project in page.body["data"].as_array().expect("data") {
                seen.push(project["id"].as_str().unwrap_or_default().to_owned());
            }
            pages += 1;
            let Some(cursor) = page.body["next_cursor"].as_str() else {
                break;
            };
            query = format!("?sort={sort}&limit=6&cursor={cursor}");
            for name in ["a-first", "p5", "z-last"] {
                create(&app, &ada, json!({ "name": name })).await;
            }
            if let Some(id) = doomed.pop() {
                let gone = app
                    .delete(&format!("/api/v1/projects/{id}"), Some(&ada.access_token))
                    .await;
                assert_eq!(gone.status, StatusCode::NO_CONTENT);
            }
        }
        let unique: HashSet<String> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: a project was repeated");
        let skipped: Vec<_> = survivors.difference(&unique).collect();
        assert!(skipped.is_empty(), "{sort}: skipped {skipped:?}");
        assert!(pages >= 5, "{sort}: {pages} pages");
    }
}
