//! The audit log of authentication: one line per attempt (register, login,
//! refresh, logout, password and address changes) with its outcome, the
//! user id when known, the client IP and the request id — never the
//! e-mail, the password or a token.

use actix_web::{HttpMessage as _, HttpRequest};
use projects_domain::UserId;

use crate::client_ip::ClientIp;
use crate::request_id::RequestId;

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
    let request_id = request_id(req);
    tracing::info!(
        auth.event = event,
        auth.outcome = outcome,
        user.id = user_id.map(|id| id.to_string()),
        client.ip = client_ip.map(tracing::field::display),
        request_id = request_id.as_deref(),
        "authentication attempt"
    );
}

/// The id the request-id middleware gave the request (the client's when
/// sane, else a new one): the one the response and every other log line of
/// the request carry, never the header read again.
fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::request_id::X_REQUEST_ID;

    #[test]
    fn the_logged_id_is_the_middlewares_not_the_header() {
        // No header: the middleware made an id up, and that one is logged.
        let req = TestRequest::default().to_http_request();
        req.extensions_mut()
            .insert(RequestId::new("0193aa00-made-up-by-the-server").expect("sane"));
        assert_eq!(
            request_id(&req).as_deref(),
            Some("0193aa00-made-up-by-the-server")
        );

        // A header and a different id in the extension (an insane header
        // the middleware replaced, say): the extension wins.
        let req = TestRequest::default()
            .insert_header((X_REQUEST_ID, "from-the-header"))
            .to_http_request();
        req.extensions_mut()
            .insert(RequestId::new("from-the-middleware").expect("sane"));
        assert_eq!(request_id(&req).as_deref(), Some("from-the-middleware"));

        // Outside the middleware there is no id to log.
        let req = TestRequest::default()
            .insert_header((X_REQUEST_ID, "from-the-header"))
            .to_http_request();
        assert_eq!(request_id(&req), None);
    }
}
