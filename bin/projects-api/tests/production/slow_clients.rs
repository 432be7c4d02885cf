//! Slow clients, with raw sockets against the real binary: a connection
//! that sends nothing, or a request head or body too slowly, is closed
//! within `CLIENT_TIMEOUT_SECONDS` — on its first request and on a
//! keep-alive connection after a complete one. Honest clients are not cut.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use projects_testkit::TestDb;

use super::server::Server;

const TIMEOUT_S: u64 = 2;
/// The timeout plus slack for a busy machine; on main these connections
/// stayed open 25 s and more (idle ones: 5 s, actix's default).
const CLOSED_WITHIN: Duration = Duration::from_millis(TIMEOUT_S * 1000 + 2000);
/// How long the tests watch a connection before calling it open.
const WATCH_FOR: Duration = Duration::from_secs(12);

const COMPLETE_GET: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: test\r\n\r\n";

/// Sends `first` (a complete request, or nothing), then `start`, then one
/// byte of `drip` every 300 ms; returns how long after `start` the server
/// closed the connection, or `None` if it was still open after
/// [`WATCH_FOR`]. Whatever the server sends before closing must be a
/// problem response (every error is `application/problem+json`); closing
/// without a word is fine.
fn closed_after(
    addr: SocketAddr,
    first: Option<&[u8]>,
    start: &[u8],
    drip: &[u8],
) -> Option<Duration> {
    let mut said = Vec::new();
    let closed = watch(addr, first, start, drip, &mut said);
    let said = String::from_utf8_lossy(&said);
    assert!(
        said.is_empty()
            || said
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
        "an answer to a slow client that is not a problem response: {said:?}"
    );
    closed
}

fn watch(
    addr: SocketAddr,
    first: Option<&[u8]>,
    start: &[u8],
    drip: &[u8],
    said: &mut Vec<u8>,
) -> Option<Duration> {
    let mut socket = TcpStream::connect(addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("read timeout");
    if let Some(first) = first {
        socket.write_all(first).expect("first request");
        let mut answer = [0u8; 4096];
        let read = socket.read(&mut answer).expect("first answer");
        assert!(
            answer[..read].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&answer[..read])
        );
    }
    let started = Instant::now();
    socket.write_all(start).expect("start");
    let mut dripped = 0;
    let mut buffer = [0u8; 4096];
    while started.elapsed() < WATCH_FOR {
        match socket.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(read) => said.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
        if dripped < drip.len() {
            if socket.write_all(&drip[dripped..=dripped]).is_err() {
                return Some(started.elapsed());
            }
            dripped += 1;
        }
    }
    None
}

/// A server with a client timeout of [`TIMEOUT_S`] and no rate limits.
async fn server_with_short_timeout() -> (TestDb, Server) {
    let db = TestDb::new().await;
    let server = Server::start(
        db.url(),
        &[
            ("CLIENT_TIMEOUT_SECONDS", "2"),
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    )
    .await;
    (db, server)
}

/// One slow client: what it sends first (a complete request, or nothing),
/// what it starts with, and what it then dribbles.
struct Case {
    name: &'static str,
    first: Option<&'static [u8]>,
    start: Vec<u8>,
    drip: Vec<u8>,
}

impl Case {
    fn new(name: &'static str, first: Option<&'static [u8]>, start: &[u8], drip: &[u8]) -> Self {
        Self {
            name,
            first,
            start: start.to_vec(),
            drip: drip.to_vec(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_within_the_client_timeout() {
    let (_db, server) = server_with_short_timeout().await;
    let addr = server.addr;
    let dribble = b"X-Dribble: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let spaces = [b' '; 200];
    let body_head: &[u8] = b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\n\
        Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{";
    let cases = vec![
        Case::new("an idle connection", None, b"", b""),
        Case::new(
            "a dribbled head",
            None,
            b"GET /health/live HTTP/1.1\r\n",
            dribble,
        ),
        Case::new("a dribbled body", None, body_head, &spaces),
        Case::new(
            "a dribbled second head after a complete request",
            Some(COMPLETE_GET),
            b"GET /health/live HTTP/1.1\r\n",
            dribble,
        ),
        Case::new(
            "a dribbled second body after a complete request",
            Some(COMPLETE_GET),
            body_head,
            &spaces,
        ),
        Case::new(
            "an idle keep-alive connection",
            Some(COMPLETE_GET),
            b"",
            b"",
        ),
    ];
    let watchers: Vec<_> = cases
        .into_iter()
        .map(|case| {
            std::thread::spawn(move || {
                let closed = closed_after(addr, case.first, &case.start, &case.drip);
                (case.name, closed)
            })
        })
        .collect();
    for watcher in watchers {
        let (name, closed) = watcher.join().expect("joins");
        let closed = closed.unwrap_or_else(|| panic!("{name}: still open after {WATCH_FOR:?}"));
        assert!(closed <= CLOSED_WITHIN, "{name}: closed after {closed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_clients_keep_their_keep_alive_connection() {
    let (_db, server) = server_with_short_timeout().await;
    let mut socket = TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    // Requests on one connection, each within the timeout of the previous
    // answer: the connection stays usable across several timeouts' worth.
    let body = br#"{"email":"nobody@example.com","password":"not the password"}"#;
    let login = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    for round in 0..4 {
        std::thread::sleep(Duration::from_millis(1200));
        let request = if round % 2 == 0 {
            COMPLETE_GET.to_vec()
        } else {
            [login.as_bytes(), body].concat()
        };
        socket.write_all(&request).expect("request");
        let mut answer = [0u8; 8192];
        let read = socket
            .read(&mut answer)
            .expect("an answer on the same connection");
        let text = String::from_utf8_lossy(&answer[..read]);
        assert!(
            text.starts_with("HTTP/1.1 200") || text.starts_with("HTTP/1.1 401"),
            "round {round}: {text}"
        );
    }
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let db = TestDb::new().await;
    let server = Server::start_with_open_files(256, db.url(), &[]).await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", server.pid()))
        .expect("the server's limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("an open-files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    // "Max open files <soft> <hard> files": started with 256, raised.
    assert_eq!(fields[3], fields[4], "{line}");
    assert_ne!(fields[3], "256", "{line}");
    assert!(
        server
            .logged(|l| l.contains("connection limits") && l.contains("per_worker"))
            .await,
        "{:#?}",
        server.logs()
    );
}

/// Far more idle connections than the descriptors allow: the worker stops
/// accepting at its bound (the rest wait in the listen backlog) instead of
/// running out of descriptors, so the database pool keeps its own and a
/// request that waits its turn is answered by a working server.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_waits_in_the_backlog_instead_of_exhausting_descriptors() {
    let db = TestDb::new().await;
    let server = Server::start_with_hard_open_files(
        128,
        db.url(),
        &[
            ("CLIENT_TIMEOUT_SECONDS", "2"),
            ("HTTP_WORKERS", "1"),
            ("RATE_LIMIT_PER_SECOND", "0"),
        ],
    )
    .await;
    assert!(
        server
            .logged(
                |l| l.contains("connection limits") && l.contains("\"connections.per_worker\":32")
            )
            .await,
        "128 descriptors, one worker: 32 connections; {:#?}",
        server.logs()
    );
    // 150 idle connections: 300 descriptors' worth with their watchdogs.
    let flood: Vec<TcpStream> = (0..150)
        .map(|_| TcpStream::connect(server.addr).expect("connect (the backlog holds it)"))
        .collect();
    let addr = server.addr;
    let started = Instant::now();
    let answer = tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        socket
            .write_all(b"GET /health/ready HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .expect("request");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).expect("an answer");
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("joins");
    let waited = started.elapsed();
    drop(flood);
    // Ready means the database answered: the pool still found descriptors.
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "after {waited:?}: {answer}"
    );
    let logs = server.logs();
    assert!(
        !logs
            .iter()
            .any(|l| l.contains("Too many open files") || l.contains("os error 24")),
        "{logs:#?}"
    );
}
