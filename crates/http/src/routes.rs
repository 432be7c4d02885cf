//! Every route of the API, in one list: the router (`app`) and the OpenAPI
//! document's paths (`openapi`) are both built from [`routes`], so a
//! handler registered here is served and documented, and nothing else is
//! (`utoipa_actix_web`'s `service` takes only handlers with a
//! `#[utoipa::path]`). The 405 `Allow` table and the metrics' route label
//! (`route_table`) read the document, so they follow the same list.
//!
//! Adding a route: write its handler with `#[utoipa::path(...)]` and the
//! method macro (`#[get("/api/v1/...")]`), register it in its module's
//! `routes`, and add its rows to `tests/authz_matrix.csv`.

use utoipa_actix_web::service_config::ServiceConfig;

use crate::{accounts, auth, docs, health, projects, sessions, users};

/// Registers every resource's handlers. The router tries them in this
/// order, each dynamic one (`{id}`) with a regex: the busiest routes first.
/// No two modules' paths overlap, so the order changes nothing else.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.configure(health::routes)
        .configure(projects::routes)
        .configure(users::routes)
        .configure(auth::routes)
        .configure(accounts::routes)
        .configure(sessions::routes)
        .configure(docs::routes);
}
