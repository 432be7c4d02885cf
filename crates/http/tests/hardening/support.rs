//! An app over a store whose database never answers: these tests are about
//! the layers around the routes, and the routes they add never touch it.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, test, web};
use projects_http::{AppState, HttpConfig};
use projects_store::{Store, StoreConfig};
use projects_testkit::ForTests as _;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Numbers {
    #[expect(dead_code, reason = "only its parsing matters")]
    pub n: u32,
}

async fn echo_json(body: web::Json<serde_json::Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

async fn numbers(_query: web::Query<Numbers>) -> HttpResponse {
    HttpResponse::Ok().finish()
}

async fn panics() -> HttpResponse {
    panic!("a bug in a handler")
}

/// A plain-text error response as actix or a careless handler makes them.
async fn plain(code: web::Path<u16>) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(code.into_inner()).expect("a status");
    HttpResponse::build(status).body("core::result::Result<T, E> at src/main.rs line 3")
}

async fn plain_ok() -> HttpResponse {
    HttpResponse::Ok().finish()
}

/// Calls the app; an `Err` is rendered as actix's dispatcher renders it.
pub async fn call(
    app: &impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
    request: actix_http::Request,
) -> (
    actix_web::http::StatusCode,
    actix_web::http::header::HeaderMap,
    String,
) {
    use actix_web::body::MessageBody as _;
    match test::try_call_service(app, request).await {
        Ok(response) => {
            let (status, headers) = (response.status(), response.headers().clone());
            let body = test::read_body(response).await;
            (
                status,
                headers,
                String::from_utf8(body.to_vec()).expect("UTF-8"),
            )
        }
        Err(error) => {
            let response = error.error_response();
            let (status, headers) = (response.status(), response.headers().clone());
            let body = response.into_body().try_into_bytes().expect("a whole body");
            (
                status,
                headers,
                String::from_utf8(body.to_vec()).expect("UTF-8"),
            )
        }
    }
}

pub fn state(config: HttpConfig) -> AppState {
    let store = Store::connect(&StoreConfig::new("postgres://postgres@127.0.0.1:1/none"))
        .expect("a valid URL");
    AppState::for_tests_with(store, config)
}

/// The real app plus a few routes that use actix's own extractors with
/// their default error handling, and one that panics.
pub async fn app_with(
    state: AppState,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let limit = state.config.body_limit;
    let app: App<_> = projects_http::app(state)
        .service(
            web::resource("/test/json")
                .app_data(web::JsonConfig::default().limit(limit))
                .route(web::post().to(echo_json)),
        )
        .route("/test/query", web::get().to(numbers))
        .route("/test/panic", web::get().to(panics))
        .route("/test/status/{code}", web::get().to(plain))
        // A resource with method routes: actix itself answers 405 for others.
        .service(web::resource("/health/live-too").route(web::get().to(plain_ok)));
    test::init_service(app).await
}

pub async fn app(
    config: HttpConfig,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    app_with(state(config)).await
}

pub fn header<B>(response: &ServiceResponse<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII header").to_owned())
}
