//! `/health/live` and `/health/ready`.

use actix_web::{HttpResponse, get, web};
use serde_json::json;

use crate::{ApiError, AppState};

/// The process is up.
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// The database answers and every migration is applied; else 503.
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    match state.store.ready().await {
        Ok(true) => Ok(HttpResponse::Ok().json(json!({ "status": "ok" }))),
        Ok(false) => Err(ApiError::Unavailable("migrations are not applied")),
        Err(error) => {
            tracing::warn!(error = ?error, "readiness check failed");
            Err(ApiError::Unavailable("the database is unreachable"))
        }
    }
}
