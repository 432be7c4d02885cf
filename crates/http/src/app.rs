//! The application: every route, mounted on one `App`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};

use crate::{ApiError, AppState, health, metrics, openapi};

/// Mounts every route and the shared state. The binary and the tests both
/// build the server from this, so the tests drive the real application.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::new(state))
            .service(health::live)
            .service(health::ready)
            .configure(openapi::configure)
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
    App::new()
        .wrap(from_fn(metrics::record_request))
        .configure(configure(state))
}

/// Unknown paths answer 404, and known paths with a method they do not
/// have 405 with `Allow`, in the same problem format as everything else.
async fn not_found(request: actix_web::HttpRequest) -> Result<actix_web::HttpResponse, ApiError> {
    match openapi::allowed_methods(request.path()) {
        Some(allow) => Err(ApiError::MethodNotAllowed { allow }),
        None => Err(ApiError::NotFound),
    }
}
