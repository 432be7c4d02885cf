//! The strength estimate runs in a child process of the binary
//! (`projects-api password-strength`): the same answers as zxcvbn in the
//! server's own process, without its dictionaries staying in the server.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use projects_domain::inputs::password_weakness;
use projects_testkit::{TestDb, unique_email};
use serde_json::{Value, json};

use super::server::Server;

/// `projects-api password-strength` with `password` on its standard input.
fn estimate_in_child(password: &str) -> Option<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_projects-api"))
        .arg("password-strength")
        .env_clear()
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(password.as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("the binary exits");
    assert!(output.status.success(), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[test]
fn the_subcommand_answers_what_zxcvbn_answers_in_process() {
    let hostile: String = "4@8({[<369!|70$5+%2".chars().cycle().take(128).collect();
    for password in [
        "password",
        "Tr0ub4dor&3",
        "correct horse battery staple",
        "qwertyuiop1234",
        "ünïcödé ünïcödé ünïcödé",
        "line\nbreak \"quoted\" \\ back",
        hostile.as_str(),
    ] {
        assert_eq!(
            estimate_in_child(password),
            password_weakness(password),
            "{password}"
        );
    }
}

/// The server's resident memory, from /proc.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_leave_no_dictionaries_in_the_server() {
    let db = TestDb::new().await;
    let server = Server::start(
        db.url(),
        &[
            ("RATE_LIMIT_PER_SECOND", "0"),
            ("AUTH_RATE_LIMIT_PER_MINUTE", "0"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let register = |password: &'static str| {
        client
            .post(server.url("/api/v1/auth/register"))
            .json(
                &json!({ "email": unique_email("strength"), "name": "Ada", "password": password }),
            )
            .send()
    };
    // A login first (an unknown address: a database lookup and one
    // argon2 verification, no estimate): whatever a first request sets up
    // for good (connections, buffers) is not what this test looks for.
    let login = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": unique_email("nobody"), "password": "whatever it is" }))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 401);
    let before = resident_kib(server.pid());

    let weak = register("password").await.expect("register");
    assert_eq!(weak.status(), 422);
    let problem: Value = weak.json().await.expect("JSON");
    let expected = password_weakness("password").expect("weak");
    assert!(
        problem.to_string().contains(&expected),
        "the child's message, {expected:?}, in {problem}"
    );
    for _ in 0..3 {
        let strong = register("amber falcon 7 trombone, twice")
            .await
            .expect("register");
        assert_eq!(strong.status(), 201);
    }

    // zxcvbn's dictionaries, built in the server, took it 5.5 MB higher and
    // kept it there; a child's go away with it.
    let grown = resident_kib(server.pid()).saturating_sub(before);
    assert!(grown < 3 * 1024, "the server grew by {grown} KiB");
}
