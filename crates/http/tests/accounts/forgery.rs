//! Every forged or unusable access token is a 401 with
//! `WWW-Authenticate: Bearer`, through the whole app.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use projects_auth::Claims;
use projects_domain::Role;
use projects_testkit::TEST_JWT_SECRET;
use projects_testkit::{TestApp, TestUser};

fn claims_for(user: &TestUser) -> Claims {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Claims {
        sub: *user.id.as_uuid(),
        sid: uuid::Uuid::now_v7(),
        email: user.email.clone(),
        role: user.role,
        iat: now,
        exp: now + 900,
        iss: "projects-api".into(),
        aud: "projects-api".into(),
        jti: uuid::Uuid::now_v7(),
    }
}

fn sign(claims: &Claims, algorithm: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signs")
}

#[actix_web::test]
async fn every_forgery_is_a_401_with_a_bearer_challenge() {
    let app = TestApp::new().await;
    let user = app.user().await;
    let good = claims_for(&user);
    assert_eq!(
        app.get(
            "/api/v1/users/me",
            Some(&sign(&good, Algorithm::HS256, TEST_JWT_SECRET))
        )
        .await
        .status,
        StatusCode::OK,
        "a correctly signed token works"
    );

    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).expect("json"));
    let alg_none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#)
    );
    let mut promoted = good.clone();
    promoted.role = Role::Admin;
    let genuine = sign(&good, Algorithm::HS256, TEST_JWT_SECRET);
    let mut parts: Vec<String> = genuine.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&promoted).expect("json"));
    let changed_payload = parts.join(".");
    let expired = Claims {
        iat: good.iat - 7200,
        exp: good.iat - 3600,
        ..good.clone()
    };
    let wrong_iss = Claims {
        iss: "evil".into(),
        ..good.clone()
    };
    let wrong_aud = Claims {
        aud: "evil".into(),
        ..good.clone()
    };
    let cases: Vec<(&str, String)> = vec![
        ("alg none", format!("Bearer {alg_none}")),
        (
            "HS512",
            format!("Bearer {}", sign(&good, Algorithm::HS512, TEST_JWT_SECRET)),
        ),
        (
            "wrong key",
            format!(
                "Bearer {}",
                sign(
                    &good,
                    Algorithm::HS256,
                    "some other secret that is long enough"
                )
            ),
        ),
        ("changed payload", format!("Bearer {changed_payload}")),
        (
            "expired",
            format!(
                "Bearer {}",
                sign(&expired, Algorithm::HS256, TEST_JWT_SECRET)
            ),
        ),
        (
            "wrong iss",
            format!(
                "Bearer {}",
                sign(&wrong_iss, Algorithm::HS256, TEST_JWT_SECRET)
            ),
        ),
        (
            "wrong aud",
            format!(
                "Bearer {}",
                sign(&wrong_aud, Algorithm::HS256, TEST_JWT_SECRET)
            ),
        ),
        ("garbage", "Bearer garbage".to_owned()),
        ("no Bearer prefix", genuine.clone()),
        ("Basic scheme", format!("Basic {genuine}")),
        ("empty bearer", "Bearer ".to_owned()),
    ];
    for (name, authorization) in cases {
        let response = app
            .send(
                TestRequest::get()
                    .uri("/api/v1/users/me")
                    .insert_header(("Authorization", authorization))
                    .to_request(),
            )
            .await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|value| value.starts_with("Bearer")),
            "{name}"
        );
        assert_eq!(response.body["status"], 401, "{name}");
    }
    let missing = app.get("/api/v1/users/me", None).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(missing.header("www-authenticate").is_some());
}

#[actix_web::test]
async fn a_forged_admin_claim_does_not_open_admin_routes() {
    let app = TestApp::new().await;
    let user = app.user().await;
    // Even correctly signed, a stale or false role claim is not trusted by
    // the admin routes: they read the role from the database.
    let mut claims = claims_for(&user);
    claims.role = Role::Admin;
    let token = sign(&claims, Algorithm::HS256, TEST_JWT_SECRET);
    let response = app.get("/api/v1/users", Some(&token)).await;
    assert_eq!(response.status, StatusCode::FORBIDDEN);
}
