//! The authorization matrix: every row of `authz_matrix.csv` (method, path,
//! actor, object → status) run against the real application, plus a check
//! that the table covers every route the application serves.
//!
//! Routes are found without a hand-kept list: every path of the OpenAPI
//! document (made from the same list of routes as the router) and every
//! string literal in the http crate's source that starts with `/` is a
//! candidate path; the app's own router says which route pattern each one
//! falls under, and probing each pattern with every method (behind a marker
//! default service) says which methods it has. So a newly registered
//! handler, `cfg.route(PATH, …)` with `const PATH: &str = "/new"`, or a new
//! method on an existing path all fail this test until the table has their
//! rows. (An undocumented route whose path is only assembled at run time,
//! e.g. inside a `web::scope`, is not found: keep route paths whole, as the
//! crate does.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpResponse, test, web};
use projects_auth::RefreshToken;
use projects_domain::inputs::NewProject;
use projects_domain::{Email, ProjectId, Role, SessionId, User};
use projects_store::{NewSession, NewUser, SessionPolicy};
use projects_testkit::{TEST_PASSWORD, TestApp, TestResponse, unique_email};
use serde_json::{Value, json};
use uuid::Uuid;

/// The table, compiled in so that the test and the table cannot drift apart.
const MATRIX: &str = include_str!("authz_matrix.csv");

/// The methods every path has rows for.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// What the discovery app's default service answers, so that a probe can
/// tell "no route has this method" from anything a handler says.
const NO_ROUTE: StatusCode = StatusCode::IM_A_TEAPOT;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Actor {
    Anonymous,
    User,
    OtherUser,
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Object {
    Own,
    Others,
    Absent,
    None,
}

#[derive(Debug)]
struct Row {
    line: usize,
    method: &'static str,
    path: String,
    actor: Actor,
    object: Object,
    status: StatusCode,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}: {} {} as {:?} on {:?}",
            self.line, self.method, self.path, self.actor, self.object
        )
    }
}

/// Parses the table; a malformed row panics naming its line.
fn parse_matrix() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut seen_header = false;
    for (index, raw) in MATRIX.lines().enumerate() {
        let line = index + 1;
        let text = raw.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        if !seen_header {
            assert_eq!(
                text, "method,path,actor,object,status",
                "line {line}: the header"
            );
            seen_header = true;
            continue;
        }
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        let [method, path, actor, object, status] = fields[..] else {
            panic!("line {line}: expected 5 columns, found {}", fields.len());
        };
        let method = METHODS
            .iter()
            .copied()
            .find(|known| *known == method)
            .unwrap_or_else(|| panic!("line {line}: unknown method {method}"));
        let actor = match actor {
            "anonymous" => Actor::Anonymous,
            "user" => Actor::User,
            "other_user" => Actor::OtherUser,
            "admin" => Actor::Admin,
            other => panic!("line {line}: unknown actor {other}"),
        };
        let object = match object {
            "own" => Object::Own,
            "others" => Object::Others,
            "absent" => Object::Absent,
            "none" => Object::None,
            other => panic!("line {line}: unknown object {other}"),
        };
        let has_id = path.contains("{id}");
        assert!(
            has_id != (object == Object::None),
            "line {line}: `none` is the object of paths without an id, and only of them"
        );
        assert!(
            !(actor == Actor::Anonymous && object == Object::Own),
            "line {line}: anonymous owns nothing"
        );
        let status = status
            .parse::<u16>()
            .ok()
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or_else(|| panic!("line {line}: bad status {status}"));
        rows.push(Row {
            line,
            method,
            path: path.to_owned(),
            actor,
            object,
            status,
        });
    }
    rows
}

/// The objects a (method, path, actor) must have rows for.
fn objects_for(path: &str, actor: Actor) -> BTreeSet<Object> {
    match (path.contains("{id}"), actor) {
        (false, _) => [Object::None].into(),
        (true, Actor::Anonymous) => [Object::Others, Object::Absent].into(),
        (true, _) => [Object::Own, Object::Others, Object::Absent].into(),
    }
}

/// A pattern's `{…}` segments filled with a UUID, so that a probe matches it.
fn instance(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        out.push_str("0192f0e4-0000-7000-8000-000000000000");
        rest = rest[start..]
            .find('}')
            .map_or("", |end| &rest[start + end + 1..]);
    }
    out.push_str(rest);
    out
}

/// Every string literal in the http crate's source that starts with `/`
/// and looks like a path: route attributes, route constants, and some
/// strings that are no route at all (the router sorts those out).
fn path_literals() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read the source directory") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let source = std::fs::read_to_string(&path).expect("read a source file");
                for (start, _) in source.match_indices("\"/") {
                    let literal = &source[start + 1..];
                    let Some(end) = literal[1..].find('"') else {
                        continue;
                    };
                    let literal = &literal[..=end];
                    let literal = literal.split('?').next().unwrap_or_default();
                    if literal.chars().all(|c| c.is_ascii_graphic() && c != '\\') {
                        found.insert(literal.to_owned());
                    }
                }
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// The routes the application serves: pattern → methods (of [`METHODS`]).
async fn served_routes(
    app: &TestApp,
    extra: &BTreeSet<String>,
) -> BTreeMap<String, BTreeSet<&'static str>> {
    let service = test::init_service(
        App::new()
            .configure(projects_http::configure(app.state.clone()))
            .default_service(web::to(|| async { HttpResponse::new(NO_ROUTE) })),
    )
    .await;
    let mut candidates = path_literals();
    candidates.extend(projects_http::openapi::openapi().paths.paths.into_keys());
    candidates.extend(extra.iter().cloned());
    // Which pattern each candidate falls under (the router ignores methods
    // here, so any method will do).
    let mut patterns = BTreeSet::new();
    for candidate in &candidates {
        let request = test::TestRequest::get()
            .uri(&instance(candidate))
            .to_request();
        let response = test::call_service(&service, request).await;
        if let Some(pattern) = response.request().match_pattern() {
            patterns.insert(pattern);
        }
    }
    let mut routes = BTreeMap::new();
    for pattern in patterns {
        let mut methods = BTreeSet::new();
        for method in METHODS {
            let request = test::TestRequest::default()
                .method(Method::from_bytes(method.as_bytes()).expect("a method"))
                .uri(&instance(&pattern))
                .to_request();
            // A path served for other methods may answer 405 (the app's
            // 405 with `Allow`; `/api/v1/projects/{id}` is one resource with
            // a route per method): that method is not served either.
            let status = test::call_service(&service, request).await.status();
            if status != NO_ROUTE && status != StatusCode::METHOD_NOT_ALLOWED {
                methods.insert(method);
            }
        }
        if !methods.is_empty() {
            routes.insert(pattern, methods);
        }
    }
    routes
}

/// One actor of a row's fixtures.
struct Principal {
    user: User,
    access_token: String,
    refresh_token: String,
    project: ProjectId,
    session: SessionId,
}

/// A row's world: three actors, each with a project and a refresh token.
struct Fixtures {
    user: Principal,
    other_user: Principal,
    admin: Principal,
}

/// Inserts a user straight through the store (with a hash of
/// [`TEST_PASSWORD`] computed once: argon2 per row would take minutes),
/// then issues their tokens as a login would and gives them a project.
async fn principal(app: &TestApp, role: Role, password_hash: &str) -> Principal {
    let store = &app.state.store;
    let user = store
        .users()
        .insert(&NewUser {
            email: Email::parse(&unique_email("matrix")).expect("a valid e-mail"),
            name: "Matrix".into(),
            role,
            password_hash: password_hash.to_owned(),
        })
        .await
        .expect("insert a user");
    let refresh = RefreshToken::generate();
    let session = store
        .sessions()
        .start(
            &NewSession {
                user_id: user.id,
                first_token_hash: refresh.hash().0,
                user_agent: None,
                ip: None,
            },
            &SessionPolicy::default(),
        )
        .await
        .expect("start a session");
    let access_token = app
        .state
        .tokens
        .issue(&user, session)
        .expect("an access token")
        .token;
    let project = store
        .projects()
        .create(
            user.id,
            &NewProject {
                name: Some("Matrix".into()),
                description: None,
                status: Default::default(),
            },
        )
        .await
        .expect("create a project")
        .id;
    Principal {
        user,
        access_token,
        refresh_token: refresh.expose().to_owned(),
        project,
        session,
    }
}

impl Fixtures {
    async fn new(app: &TestApp, password_hash: &str) -> Self {
        Self {
            user: principal(app, Role::User, password_hash).await,
            other_user: principal(app, Role::User, password_hash).await,
            admin: principal(app, Role::Admin, password_hash).await,
        }
    }

    fn actor(&self, actor: Actor) -> Option<&Principal> {
        match actor {
            Actor::Anonymous => None,
            Actor::User => Some(&self.user),
            Actor::OtherUser => Some(&self.other_user),
            Actor::Admin => Some(&self.admin),
        }
    }

    /// Whose resource `others` is for this actor.
    fn others(&self, actor: Actor) -> &Principal {
        match actor {
            Actor::User => &self.other_user,
            Actor::Anonymous | Actor::OtherUser | Actor::Admin => &self.user,
        }
    }

    /// The concrete path of a row.
    fn path(&self, row: &Row) -> String {
        let owner = match row.object {
            // The docs' files: one that exists.
            Object::None if row.path == "/docs/{file:.*}" => return "/docs/swagger-ui.css".into(),
            Object::None => return row.path.clone(),
            Object::Absent => return row.path.replace("{id}", &Uuid::now_v7().to_string()),
            Object::Own => self.actor(row.actor).expect("anonymous owns nothing"),
            Object::Others => self.others(row.actor),
        };
        let id = if row.path.starts_with("/api/v1/projects/") {
            owner.project.to_string()
        } else if row.path.starts_with("/api/v1/auth/sessions/") {
            owner.session.to_string()
        } else {
            owner.user.id.to_string()
        };
        row.path.replace("{id}", &id)
    }

    /// A valid body for the row's route, so that authorization decides.
    fn body(&self, row: &Row) -> Option<Value> {
        let caller = self.actor(row.actor);
        // Anonymous has credentials (it may know a password) but no session.
        let credentials = caller.unwrap_or(&self.user);
        let refresh_token = caller.map_or("not-a-refresh-token", |principal| {
            principal.refresh_token.as_str()
        });
        match (row.method, row.path.as_str()) {
            ("GET" | "DELETE", _) => None,
            ("POST", "/api/v1/auth/register") => Some(json!({
                "email": unique_email("matrix-register"),
                "name": "Matrix",
                "password": TEST_PASSWORD,
            })),
            ("POST", "/api/v1/auth/login") => Some(json!({
                "email": credentials.user.email.as_str(),
                "password": TEST_PASSWORD,
            })),
            ("POST", "/api/v1/auth/refresh" | "/api/v1/auth/logout") => {
                Some(json!({ "refresh_token": refresh_token }))
            }
            ("POST", "/api/v1/auth/password-reset") => Some(json!({
                "email": credentials.user.email.as_str(),
            })),
            ("POST", "/api/v1/auth/password-reset/confirm") => Some(json!({
                "token": "not-a-token",
                "password": "a strong new passphrase",
            })),
            ("POST", "/api/v1/auth/verify-email" | "/api/v1/auth/email-change/confirm") => {
                Some(json!({ "token": "not-a-token" }))
            }
            ("POST", "/api/v1/auth/verify-email/resend") => None,
            // Every other body route takes a name: users (me and by id),
            // projects (create and update); the 405 rows get one too.
            _ => Some(json!({ "name": "Renamed" })),
        }
    }
}

async fn run(app: &TestApp, fixtures: &Fixtures, row: &Row) -> TestResponse {
    let method = Method::from_bytes(row.method.as_bytes()).expect("a method");
    let token = fixtures
        .actor(row.actor)
        .map(|principal| principal.access_token.as_str());
    app.request(
        method,
        &fixtures.path(row),
        token,
        fixtures.body(row).as_ref(),
        &[],
    )
    .await
}

/// The table's (method, path) pairs against the routes the app serves.
fn coverage_problems(
    rows: &[Row],
    served: &BTreeMap<String, BTreeSet<&'static str>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut present: BTreeSet<(&str, &str, Actor, Object)> = BTreeSet::new();
    for row in rows {
        if !present.insert((row.method, row.path.as_str(), row.actor, row.object)) {
            problems.push(format!("{row}: a duplicate row"));
        }
        match served.get(&row.path) {
            None => problems.push(format!("{row}: the app serves no such path")),
            Some(methods) => {
                let has = methods.contains(row.method);
                if has && row.status == StatusCode::METHOD_NOT_ALLOWED {
                    problems.push(format!(
                        "{row}: expects 405, but the app serves {} {}",
                        row.method, row.path
                    ));
                }
                if !has && row.status != StatusCode::METHOD_NOT_ALLOWED {
                    problems.push(format!(
                        "{row}: the app has no {} {}, so the row must expect 405",
                        row.method, row.path
                    ));
                }
            }
        }
    }
    for (pattern, methods) in served {
        for method in METHODS {
            for actor in [
                Actor::Anonymous,
                Actor::User,
                Actor::OtherUser,
                Actor::Admin,
            ] {
                for object in objects_for(pattern, actor) {
                    if !present.contains(&(method, pattern.as_str(), actor, object)) {
                        let what = if methods.contains(method) {
                            "served by the app"
                        } else {
                            "not served: expect 405"
                        };
                        problems.push(format!(
                            "no row for {method} {pattern} as {actor:?} on {object:?} ({what})"
                        ));
                    }
                }
            }
        }
    }
    problems
}

#[actix_web::test]
async fn every_route_answers_every_caller_as_the_contract_says() {
    let rows = parse_matrix();
    let app = TestApp::new().await;

    let table_paths: BTreeSet<String> = rows.iter().map(|row| row.path.clone()).collect();
    let served = served_routes(&app, &table_paths).await;
    let mut problems = coverage_problems(&rows, &served);

    let password_hash = app
        .state
        .passwords
        .hash(TEST_PASSWORD)
        .await
        .expect("hash the test password");
    // One admin more than any row's fixtures, so that an admin deleting or
    // demoting themself never meets the last-admin rule (its own tests
    // cover it).
    principal(&app, Role::Admin, &password_hash).await;

    let mut missing_405 = 0;
    for row in &rows {
        let fixtures = Fixtures::new(&app, &password_hash).await;
        let response = run(&app, &fixtures, row).await;
        if response.status != row.status {
            if row.status == StatusCode::METHOD_NOT_ALLOWED {
                missing_405 += 1;
            }
            problems.push(format!(
                "{row}: expected {}, got {}: {}",
                row.status.as_u16(),
                response.status.as_u16(),
                response.text.chars().take(160).collect::<String>()
            ));
        } else if row.status == StatusCode::METHOD_NOT_ALLOWED {
            let allow: BTreeSet<String> = response
                .header("allow")
                .unwrap_or_default()
                .split(',')
                .map(|method| method.trim().to_owned())
                .filter(|method| !method.is_empty())
                .collect();
            let expected: BTreeSet<String> = served
                .get(&row.path)
                .into_iter()
                .flatten()
                .map(|method| (*method).to_owned())
                .collect();
            if !expected.is_subset(&allow) {
                problems.push(format!(
                    "{row}: `Allow` is {allow:?}, expected it to list {expected:?}"
                ));
            }
        }
    }

    assert!(
        problems.is_empty(),
        "{} problems over {} rows ({} rows expect 405 and got something else):\n{}",
        problems.len(),
        rows.len(),
        missing_405,
        problems.join("\n")
    );
}
