//! The application: every route, mounted on one `App`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, web};

use crate::middleware::{allow, cors, problems, request_id, security_headers};
use crate::{ApiError, AppState, health};

/// Mounts every route and the shared state. The binary and the tests both
/// build the server from this, so the tests drive the real application.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(health::live)
            .service(health::ready)
            .default_service(web::to(not_found));
    }
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
    App::new()
        .configure(configure(state))
        .wrap(from_fn(crate::rate_limit::rate_limit))
        .wrap(cors)
        .wrap(from_fn(problems::finalise_problems))
        .wrap(from_fn(security_headers::security_headers))
        .wrap(from_fn(request_id::assign_request_id))
}

/// Unknown paths answer 404 in the same problem format as everything else;
/// a known path with a method it lacks answers 405 with `Allow`.
async fn not_found(req: HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    match allow::allowed_methods(&req) {
        Some(allow) => Err(ApiError::MethodNotAllowed { allow }),
        None => Err(ApiError::NotFound),
    }
}
