//! The binary refuses to serve with a `JWT_SECRET` anyone can guess: exit
//! code 2 and a message naming the variable, before it touches the
//! database or opens a port.

use std::process::{Command, Output};

/// Runs `projects-api serve` with `secret`, away from any `.env`, with a
/// database URL nothing answers at (the check must come first).
fn serve_with(secret: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_projects-api"))
        .arg("serve")
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("JWT_SECRET", secret)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("METRICS_ADDR", "off")
        .output()
        .expect("the binary runs")
}

#[test]
fn published_and_trivially_weak_secrets_are_refused_with_exit_code_2() {
    let example_file = include_str!("../../../.env.example");
    let published_example = "dev-only-insecure-jwt-secret-never-use-outside-local-development";
    let mut weak: Vec<String> = vec![
        published_example.into(),
        projects_testkit::TEST_JWT_SECRET.into(),
        "a".repeat(32),
        "a".repeat(64),
        "ab".repeat(32),
        "0123456789abcdef".repeat(4),
        "secretsecretsecretsecretsecretsecret".into(),
    ];
    // Whatever value the example file carries, if any, is public too.
    if let Some(value) = example_file
        .lines()
        .find_map(|line| line.trim().strip_prefix("JWT_SECRET="))
        .filter(|value| !value.is_empty())
    {
        weak.push(value.to_owned());
    }
    for secret in &weak {
        let output = serve_with(secret);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{secret:?} was not refused: {stderr}"
        );
        assert!(stderr.contains("JWT_SECRET"), "{stderr}");
        assert!(!stderr.contains(secret.as_str()), "the secret was echoed");
    }
}

#[test]
fn a_random_secret_passes_the_check() {
    // It gets past the configuration to the database, which is not there:
    // exit 1 (a failed start), not 2 (a refused configuration).
    let output = serve_with("9f2c4e1a7b3d5f60812a4c6e8b0d2f41a3c5e7f9b1d3f5a7c9e1b3d5f7a9c1e3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("JWT_SECRET"), "{stderr}");
}
