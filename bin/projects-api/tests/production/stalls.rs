//! No request can hold a worker: hostile passwords, sent by several clients
//! at once to registration and to `PATCH /users/me`, leave another route's
//! latency alone on a server with a single request worker.

use std::time::{Duration, Instant};

use projects_testkit::{TestDb, unique_email};
use serde_json::{Value, json};

use super::server::Server;

/// zxcvbn's most expensive input: 128 characters of its l33t table (about
/// 0.9 s of one core when it ran on the request worker).
fn hostile_password() -> String {
    "4@8({[<369!|70$5+%2".chars().cycle().take(128).collect()
}

const GOOD_PASSWORD: &str = "correct horse battery staple";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_passwords_do_not_stall_the_request_workers() {
    let db = TestDb::new().await;
    let server = Server::start(
        db.url(),
        &[
            ("HTTP_WORKERS", "1"),
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let registered: Value = client
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({ "email": unique_email("victim"), "name": "Ada", "password": GOOD_PASSWORD }))
        .send()
        .await
        .expect("register")
        .json()
        .await
        .expect("JSON");
    let token = registered["tokens"]["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();

    let abuse_for = Duration::from_secs(4);
    let started = Instant::now();
    let mut attackers = Vec::new();
    for n in 0..6 {
        let (client, token) = (client.clone(), token.clone());
        let (register, me) = (
            server.url("/api/v1/auth/register"),
            server.url("/api/v1/users/me"),
        );
        attackers.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            while started.elapsed() < abuse_for {
                let request = if n % 2 == 0 {
                    client.post(&register).json(&json!({
                        "email": unique_email("hostile"), "name": "Eve", "password": hostile_password()
                    }))
                } else {
                    client.patch(&me).bearer_auth(&token).json(&json!({
                        "password": hostile_password(), "current_password": "a wrong guess"
                    }))
                };
                statuses.push(request.send().await.map(|r| r.status().as_u16()));
            }
            statuses
        }));
    }

    // Meanwhile, another route on the same (single) worker.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while started.elapsed() < abuse_for {
        let sent = Instant::now();
        let response = client
            .get(server.url("/health/live"))
            .send()
            .await
            .expect("live answers");
        assert_eq!(response.status(), 200);
        slowest = slowest.max(sent.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut statuses = Vec::new();
    for attacker in attackers {
        statuses.extend(attacker.await.expect("joins"));
    }
    assert!(probes >= 10, "only {probes} probes");
    assert!(!statuses.is_empty());
    for status in &statuses {
        let status = status.as_ref().expect("every hostile request is answered");
        // A decision on the password (201, 422), the wrong current password
        // (401), its per-account throttle (429), or a full pool (503): never
        // a 500.
        assert!([201, 401, 422, 429, 503].contains(status), "{statuses:?}");
    }
    // Generous: a stalled worker made it seconds; served beside the
    // estimates it is milliseconds.
    assert!(
        slowest < Duration::from_millis(1500),
        "/health/live took {slowest:?} while hostile passwords were estimated"
    );
}
