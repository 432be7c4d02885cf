//! The floor under `GET /health/live`: actix-web and nothing else, for
//! `just bench --instructions --floor` (bench/README.md).
//!
//! One worker, one route answering the body the server's liveness check
//! answers, with the same `Content-Type`: no middleware, no logs, no
//! metrics, no request id. What callgrind counts per request here is what
//! actix-web, actix-http, tokio and the allocator cost before the server
//! adds anything, so the server's health figure can be read as this floor
//! plus what each of its duties adds.
//!
//! `BIND_ADDR` (default `127.0.0.1:8080`); stops on SIGTERM like the server.

use actix_web::http::header::ContentType;
use actix_web::{App, HttpResponse, HttpServer, web};

async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::var("BIND_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_owned());
    HttpServer::new(|| App::new().route("/health/live", web::get().to(live)))
        .workers(1)
        .bind(addr)?
        .run()
        .await
}
