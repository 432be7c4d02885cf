//! `/health/live` and `/health/ready`.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::problem_responses::ServiceUnavailable;
use crate::{ApiError, AppState};

/// The answer of a health check that passed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({ "status": "ok" }))]
pub struct HealthStatus {
    status: HealthState,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum HealthState {
    Ok,
}

const OK: HealthStatus = HealthStatus {
    status: HealthState::Ok,
};

/// Registers this module's handlers: the router and the OpenAPI document's
/// paths both come from here (see `routes`).
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(live).service(ready);
}

/// Liveness.
///
/// The process is up: 200 while it runs, draining or not.
#[utoipa::path(
    tag = "health",
    security(()),
    responses((status = 200, description = "The process is up", body = HealthStatus))
)]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(OK)
}

/// Readiness.
///
/// The database answers, every migration is applied, statements run under
/// the configured timeouts, and the server is not draining; else 503.
#[utoipa::path(
    tag = "health",
    security(()),
    responses(
        (status = 200, description = "Ready to serve requests", body = HealthStatus),
        (status = 503, response = ServiceUnavailable),
    )
)]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.drain.is_draining() {
        return Err(ApiError::Unavailable("the server is shutting down"));
    }
    match state.store.ready().await {
        Ok(true) => Ok(HttpResponse::Ok().json(OK)),
        Ok(false) => Err(ApiError::Unavailable(
            "migrations are not applied, or the database timeouts are not in effect",
        )),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            Err(ApiError::Unavailable("the database is unreachable"))
        }
    }
}
