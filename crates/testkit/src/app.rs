//! An in-process application over a fresh database, with typed request
//! helpers and user factories, for the HTTP tests of every resource.
//!
//! ```ignore
//! let app = TestApp::new().await;
//! let ada = app.user().await;                 // a registered `user`
//! let root = app.admin().await;               // a registered `admin`
//! let response = app.get("/api/v1/users/me", Some(&ada.access_token)).await;
//! assert_eq!(response.status, 200);
//! assert_eq!(response.body["id"], ada.id.to_string());
//! ```

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::body::{BoxBody, MessageBody as _};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::HeaderMap;
use actix_web::http::{Method, StatusCode};
use actix_web::test;
use futures_util::future::LocalBoxFuture;
use projects_domain::{Role, UserId};
use projects_http::AppState;
use serde_json::{Value, json};

use crate::{ForTests as _, TestDb};

/// A password strong enough for the registration rules.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

type Call = dyn Fn(actix_http::Request) -> LocalBoxFuture<'static, ServiceResponse<BoxBody>>;

/// The real application (`projects_http::app`) over its own fresh
/// database, driven in-process through `actix_web::test`.
pub struct TestApp {
    /// The state the app was built with (store, token service, hasher).
    pub state: AppState,
    call: Rc<Call>,
    /// Dropped last: the database outlives the app's pool users. Shared
    /// with the app's other instances ([`TestApp::another_instance`]).
    pub db: Rc<TestDb>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

/// A response, read completely: status, headers, and the body as JSON
/// (`Value::Null` when empty or not JSON; `text` has the raw body).
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl TestResponse {
    /// A header's value as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The body without its `request_id`, which differs on every request:
    /// for comparing two problem responses that must be alike.
    pub fn body_without_request_id(&self) -> Value {
        let mut body = self.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.remove("request_id");
        }
        body
    }
}

/// A registered user and their credentials.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: Role,
    /// A valid access token (role claim as the database says).
    pub access_token: String,
    pub refresh_token: String,
    /// The user as the registration or login response showed it.
    pub json: Value,
}

impl TestUser {
    /// `Bearer <access token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token)
    }
}

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// A unique e-mail address for a test user.
pub fn unique_email(prefix: &str) -> String {
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n}-{}@example.com", uuid::Uuid::new_v4().simple())
}

impl TestApp {
    /// A fresh database and the app over it with [`ForTests::for_tests`].
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        let state = AppState::for_tests(db.store().clone());
        Self::with_state(db, state).await
    }

    /// The app over `db` with a state of the test's choosing (e.g. a small
    /// body limit).
    pub async fn with_state(db: TestDb, state: AppState) -> Self {
        Self::over(Rc::new(db), state).await
    }

    /// A second instance of the application over the same database, as
    /// another server of a fleet would be: its own state (its own set of
    /// ended sessions, its own rate-limit memory), one database.
    pub async fn another_instance(&self) -> Self {
        let state = AppState::for_tests(self.db.store().clone());
        Self::over(Rc::clone(&self.db), state).await
    }

    async fn over(db: Rc<TestDb>, state: AppState) -> Self {
        let service = Rc::new(test::init_service(projects_http::app(state.clone())).await);
        let call: Rc<Call> = Rc::new(move |request| {
            let service = Rc::clone(&service);
            Box::pin(async move {
                test::call_service(&*service, request)
                    .await
                    .map_into_boxed_body()
            })
        });
        Self { state, call, db }
    }

    /// Sends any request. `token` is an access token (sent as `Bearer`),
    /// `body` is sent as JSON, `headers` are added last (and may override
    /// `Content-Type` or `Authorization`).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut request = test::TestRequest::default().method(method).uri(path);
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        if let Some(body) = body {
            request = request
                .insert_header(("Content-Type", "application/json"))
                .set_payload(body.to_string());
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        self.send(request.to_request()).await
    }

    /// Sends a request built by the test (raw bodies, odd headers).
    pub async fn send(&self, request: actix_http::Request) -> TestResponse {
        let response = (self.call)(request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().try_into_bytes().unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        TestResponse {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::GET, path, token, None, &[]).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::POST, path, token, Some(body), &[])
            .await
    }

    pub async fn put_json(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::PUT, path, token, Some(body), &[])
            .await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.request(Method::PATCH, path, token, Some(body), &[])
            .await
    }

    /// `PATCH` with extra headers, e.g. `&[("If-Match", "\"3\"")]`.
    pub async fn patch_json_with(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        self.request(Method::PATCH, path, token, Some(body), headers)
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.request(Method::DELETE, path, token, None, &[]).await
    }

    /// Registers through the API and returns the response's `user` and
    /// `tokens`; panics unless the answer is 201.
    pub async fn register(&self, email: &str, name: &str, password: &str) -> (Value, Value) {
        let response = self
            .post_json(
                "/api/v1/auth/register",
                None,
                &json!({ "email": email, "name": name, "password": password }),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "registration failed: {}",
            response.text
        );
        (
            response.body["user"].clone(),
            response.body["tokens"].clone(),
        )
    }

    /// Logs in through the API; panics unless the answer is 200.
    pub async fn login(&self, email: &str, password: &str) -> (Value, Value) {
        let response = self
            .post_json(
                "/api/v1/auth/login",
                None,
                &json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login failed: {}",
            response.text
        );
        (
            response.body["user"].clone(),
            response.body["tokens"].clone(),
        )
    }

    /// Presents a refresh token; the answer, whatever it is.
    pub async fn refresh(&self, refresh_token: &str) -> TestResponse {
        self.post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({ "refresh_token": refresh_token }),
        )
        .await
    }

    /// A new registered `user` with a unique e-mail and [`TEST_PASSWORD`].
    pub async fn user(&self) -> TestUser {
        let email = unique_email("user");
        let (json, tokens) = self.register(&email, "Test User", TEST_PASSWORD).await;
        test_user(json, &tokens, email, "Test User")
    }

    /// A new `admin`: registered, promoted in the database, and logged in
    /// again so that the access token's role claim says `admin`.
    pub async fn admin(&self) -> TestUser {
        let user = self.user().await;
        self.state
            .store
            .users()
            .set_role(user.id, Role::Admin)
            .await
            .expect("promote the test admin");
        let (json, tokens) = self.login(&user.email, &user.password).await;
        test_user(json, &tokens, user.email, &user.name)
    }
}

fn test_user(json: Value, tokens: &Value, email: String, name: &str) -> TestUser {
    let id = json["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the user has an id");
    let role = json["role"]
        .as_str()
        .and_then(|role| role.parse().ok())
        .expect("the user has a role");
    TestUser {
        id,
        email,
        name: name.to_owned(),
        password: TEST_PASSWORD.to_owned(),
        role,
        access_token: tokens["access_token"]
            .as_str()
            .expect("an access token")
            .to_owned(),
        refresh_token: tokens["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_owned(),
        json,
    }
}
