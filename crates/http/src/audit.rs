//! The audit log of authentication: one line per attempt (register, login,
//! refresh, logout, password and address changes) with its outcome, the
//! user id when known, the client IP and the request id — never the
//! e-mail, the password or a token.

use actix_web::HttpRequest;
use projects_domain::UserId;

use crate::client_ip::ClientIp;

/// Logs one authentication attempt.
pub(crate) fn log_attempt(
    req: &HttpRequest,
    event: &'static str,
    outcome: &'static str,
    user_id: Option<UserId>,
) {
    // The address the limits used, decided once for the request (never a
    // header the client chose, unless through a trusted proxy).
    let client_ip = ClientIp::of_handled(req);
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic()));
    tracing::info!(
        auth.event = event,
        auth.outcome = outcome,
        user.id = user_id.map(|id| id.to_string()),
        client.ip = client_ip.map(tracing::field::display),
        request_id,
        "authentication attempt"
    );
}
