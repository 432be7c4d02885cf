//! Closing connections whose client is too slow: `CLIENT_TIMEOUT_SECONDS`.
//!
//! actix-http times out only the head of a connection's *first* request
//! (`client_request_timeout`) and an idle keep-alive connection; measured on
//! the real server, a connection that dribbles a head or a body one byte a
//! second, or that sends part of a second request after a first complete
//! one, stays open indefinitely (40 s and more), holding a socket and a
//! slot of the worker's connection bound.
//!
//! Each connection therefore gets a deadline and a watchdog task (and
//! actix's first-head timer is turned off: it answers an empty 408, which is
//! not a problem response; the watchdog closes without a word):
//! - armed when the connection opens, and again each time a response is
//!   ready (the next request's head must arrive within the timeout);
//! - re-armed when a request with a body arrives (the body must arrive
//!   within the timeout), and disarmed once the JSON extractor has read it;
//! - disarmed when a request without a body arrives (a handler may take as
//!   long as it needs: its own timeouts bound it).
//!
//! When the deadline passes, the watchdog shuts the socket down (both
//! directions) through a duplicate of its descriptor, which makes actix see
//! the end of the stream and drop the connection. The duplicate is closed as
//! soon as the connection ends, so that a close is never delayed.
//!
//! Requests never wake the watchdog. A deadline is always "now + timeout"
//! when it is set, so it is never earlier than any time the watchdog went
//! to sleep for: the watchdog sleeps until the deadline it last saw (or for
//! one timeout while none is armed), then looks again, and sleeps on until
//! the current deadline if it moved. A connection is therefore closed at
//! its deadline exactly, and the watchdog wakes at most about once per
//! timeout however many requests the connection carries.
//!
//! Cost: one task and one descriptor per *connection*; per request, two
//! atomic stores and a read of the clock. Nothing on the hot path waits or
//! wakes a task.

use std::any::Any;
use std::net::Shutdown;
use std::os::fd::{AsFd as _, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::dev::{Extensions, ServiceRequest};
use actix_web::http::header;
use actix_web::rt::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// `deadline` when no deadline is armed.
const DISARMED: u64 = u64::MAX;

/// The deadline of one connection, shared by its watchdog and its requests
/// (as connection data). Dropped with the connection, which stops the
/// watchdog.
#[derive(Debug)]
pub struct ClientDeadline {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    timeout: Duration,
    /// When the connection opened; deadlines are milliseconds from here.
    opened: Instant,
    deadline_ms: AtomicU64,
    closed: AtomicBool,
    /// Wakes the watchdog when the connection ends (requests never do).
    ended: Notify,
}

impl Shared {
    /// The next deadline is `timeout` from now. Rounded up to the next
    /// millisecond, so that it is never earlier than a sleep the watchdog
    /// started for "now + timeout" (see the module documentation).
    fn arm(&self) {
        let deadline = self.opened.elapsed() + self.timeout;
        let deadline_ms = u64::try_from(deadline.as_millis() + 1).unwrap_or(DISARMED - 1);
        self.deadline_ms.store(deadline_ms, Ordering::Release);
    }

    fn disarm(&self) {
        self.deadline_ms.store(DISARMED, Ordering::Release);
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline_ms.load(Ordering::Acquire) {
            DISARMED => None,
            ms => Some(self.opened + Duration::from_millis(ms)),
        }
    }
}

impl Drop for ClientDeadline {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.ended.notify_one();
    }
}

/// The deadline of the body of one request, for the extractor that reads
/// it.
#[derive(Debug)]
pub(crate) struct BodyDeadline(Arc<Shared>);

impl BodyDeadline {
    /// The deadline of `req`'s connection, if it is watched.
    pub(crate) fn of(req: &actix_web::HttpRequest) -> Option<Self> {
        req.conn_data::<ClientDeadline>()
            .map(|deadline| Self(deadline.shared.clone()))
    }

    /// The body has been read: no deadline until the response is ready.
    pub(crate) fn body_read(&self) {
        self.0.disarm();
    }
}

/// For `HttpServer::on_connect`: gives each TCP connection a deadline of
/// `timeout` and its watchdog. Connections of other kinds are left alone.
pub fn on_connect(timeout: Duration) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + Clone {
    move |connection, data| {
        let Some(stream) = connection.downcast_ref::<TcpStream>() else {
            return;
        };
        let socket = match stream.as_fd().try_clone_to_owned() {
            Ok(socket) => socket,
            Err(error) => {
                // Out of descriptors: serve the connection without a
                // watchdog rather than refuse it; actix's own timeouts
                // still apply.
                tracing::warn!(%error, "cannot watch a connection's deadline");
                return;
            }
        };
        let shared = Arc::new(Shared {
            timeout,
            opened: Instant::now(),
            deadline_ms: AtomicU64::new(DISARMED),
            closed: AtomicBool::new(false),
            ended: Notify::new(),
        });
        shared.arm();
        actix_web::rt::spawn(watch(shared.clone(), socket));
        data.insert(ClientDeadline { shared });
    }
}

/// Sleeps until the deadline; if it is still the deadline then, shuts the
/// socket down. Returns (closing the duplicate) when the connection ends.
async fn watch(shared: Arc<Shared>, socket: OwnedFd) {
    loop {
        if shared.closed.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let wake_at = match shared.deadline() {
            Some(deadline) if deadline <= now => {
                tracing::info!(
                    timeout_s = shared.timeout.as_secs(),
                    "closing a connection whose client was too slow"
                );
                let _ = std::net::TcpStream::from(socket).shutdown(Shutdown::Both);
                return;
            }
            Some(deadline) => deadline,
            // None armed: any deadline armed from now on is at least one
            // timeout away, so look again then.
            None => now + shared.timeout,
        };
        tokio::select! {
            () = shared.ended.notified() => {}
            () = tokio::time::sleep_until(wake_at) => {}
        }
    }
}

/// The deadline of the connection a request came on, moved along with the
/// request by the outer layer (`middleware::outer`; see the module
/// documentation).
pub(crate) struct RequestDeadline(Arc<Shared>);

impl RequestDeadline {
    /// A request arrived: its body (if any) must arrive within the timeout;
    /// without one, no deadline while the handler runs. `None` for a
    /// request without a watched connection (in-process tests).
    pub(crate) fn start(req: &ServiceRequest) -> Option<Self> {
        let shared = req.conn_data::<ClientDeadline>()?.shared.clone();
        if has_body(req) {
            shared.arm();
        } else {
            shared.disarm();
        }
        Some(Self(shared))
    }

    /// The response is ready: the next request's head must arrive within
    /// the timeout.
    pub(crate) fn response_ready(self) {
        self.0.arm();
    }
}

/// Whether the request announces a body (a non-zero length, or chunks).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}
