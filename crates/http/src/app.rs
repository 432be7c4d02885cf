//! The application: every route, mounted on one `App`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpRequest, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::docs::ServedDocument;
use crate::middleware::{cors, outer, rate_limit};
use crate::rate_limit::Scope;
use crate::{ApiError, AppState, openapi, routes};

/// Mounts every route (`routes`) and the shared state. The binary and the
/// tests both build the server from this, so the tests drive the real
/// application.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::Data::new(ServedDocument(openapi::served_json())))
            .app_data(path_config())
            .app_data(query_config())
            .default_service(web::to(not_found));
        // The list the document's paths come from (`openapi`); what it
        // collects here is dropped.
        routes::routes(&mut ServiceConfig::new(cfg));
    }
}

/// A path that does not fit its route's types (every path parameter is an
/// id) is a 400 problem, not actix's plain-text 404.
fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|_, _| ApiError::path_id_not_uuid().into())
}

/// A query string that does not fit a handler's `web::Query` type is a 400
/// problem naming what is wrong.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|error, _| {
        ApiError::BadRequest(format!("a query parameter is invalid: {error}")).into()
    })
}

/// The whole application with its middleware.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // `wrap` puts each layer outside the previous one: read bottom-up for
    // the order a request goes through (see `middleware`).
    let cors = cors::cors(&state.config.cors_origins);
    // Without any limit the layer would count nothing and answer nothing:
    // it is left out, its call and boxed future with it.
    let limited = state.rate_limits.apply_to(Scope::Auth);
    App::new()
        .configure(configure(state))
        .wrap(Condition::new(limited, from_fn(rate_limit::rate_limit)))
        .wrap(cors)
        .wrap(from_fn(outer::outer))
}

/// Unknown paths answer 404 in the same problem format as everything else;
/// a known path with a method it lacks answers 405 with `Allow`.
async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    match crate::route_table::allowed_methods(req.path()) {
        Some(allow) => Err(ApiError::MethodNotAllowed { allow }),
        None => Err(ApiError::NotFound),
    }
}
