//! Where the password-strength estimate runs.
//!
//! zxcvbn builds its frequency dictionaries (94,000 words in six hash maps,
//! about 5.5 MB, from 0.8 MB of word lists in the binary) at its first
//! estimate and keeps them for the life of the process: a server that had
//! registered one user carried them under every later read load, a quarter
//! of its resident memory (bench/README.md, *Memory*). The server therefore
//! runs each estimate in a child process of its own binary
//! ([`StrengthEstimator::Child`], `projects-api password-strength`), which
//! takes the dictionaries with it when it exits. The answer is the same
//! function's ([`password_weakness`]), so it is the same answer; what it
//! costs is building the dictionaries for every estimate (about 30 ms of
//! one core, at the hashing threads' priority) where the server built them
//! once.

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use projects_domain::inputs::password_weakness;

/// The most a child reads from its standard input: a password the rules
/// allow is at most 128 characters, 512 bytes.
const MAX_INPUT_BYTES: u64 = 4096;

/// How long a child may take before it is killed: the request gave up at
/// [`crate::STRENGTH_DEADLINE`] already, but a child that never ends would
/// hold its blocking thread and its hashing permit for good.
const CHILD_DEADLINE: Duration = crate::STRENGTH_DEADLINE;

/// How often a running child is asked whether it has ended.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// Where [`crate::PasswordHasher::weakness`] runs zxcvbn.
#[derive(Debug, Clone, Default)]
pub enum StrengthEstimator {
    /// In this process: the dictionaries stay resident after the first
    /// estimate. For tests and short-lived commands.
    #[default]
    InProcess,
    /// In a child process, one per estimate: `program` with `args` reads the
    /// password from its standard input and answers on its standard output
    /// ([`answer_in_child`]). When the child cannot run or answers nonsense,
    /// the estimate runs in this process instead (logged): the answer
    /// matters more than the memory.
    Child { program: PathBuf, args: Vec<String> },
}

impl StrengthEstimator {
    /// Why `password` is too easy to guess, or `None` when it is strong
    /// enough. Blocks: run it on the blocking pool.
    pub(crate) fn weakness(&self, password: &str) -> Option<String> {
        match self {
            Self::InProcess => password_weakness(password),
            Self::Child { program, args } => {
                in_child(program, args, password).unwrap_or_else(|error| {
                    tracing::warn!(
                        %error,
                        program = %program.display(),
                        "the password-strength child failed; estimating in this process"
                    );
                    password_weakness(password)
                })
            }
        }
    }
}

/// Runs one estimate in a child. The password goes through a pipe, never
/// the command line (which every local user can read) or the environment
/// (cleared: the child needs none of the server's secrets).
fn in_child(program: &PathBuf, args: &[String], password: &str) -> io::Result<Option<String>> {
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A password fits the pipe's buffer; dropping `stdin` closes it. A
        // child that exited without reading it is judged by its exit status
        // and output, below, not by the broken pipe.
        match stdin.write_all(password.as_bytes()) {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => return Err(error),
            _ => {}
        }
    }
    let status = wait_at_most(&mut child, CHILD_DEADLINE)?;
    // The child has ended: its answer (a few hundred bytes at most) waits
    // in the pipes.
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_end(&mut stdout)?;
    }
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_end(&mut stderr)?;
    }
    if !status.success() {
        return Err(io::Error::other(format!(
            "{status}: {}",
            String::from_utf8_lossy(&stderr).trim()
        )));
    }
    serde_json::from_slice(&stdout).map_err(io::Error::other)
}

/// The child's exit status, or a `TimedOut` error once `limit` has passed,
/// the child killed and reaped.
fn wait_at_most(child: &mut Child, limit: Duration) -> io::Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            // Already gone if it ended in between; either way, reap it.
            let _ = child.kill();
            child.wait()?;
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no answer within {limit:?}: killed"),
            ));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// The child's side of [`StrengthEstimator::Child`]: reads a password from
/// `input` until its end and writes the estimate to `output` as JSON,
/// `null` when the password is strong enough, else the message.
pub fn answer_in_child(input: impl Read, mut output: impl Write) -> io::Result<()> {
    let mut password = String::new();
    input.take(MAX_INPUT_BYTES).read_to_string(&mut password)?;
    serde_json::to_writer(&mut output, &password_weakness(&password)).map_err(io::Error::other)?;
    output.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> StrengthEstimator {
        StrengthEstimator::Child {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    #[test]
    fn the_child_answers_as_the_estimate_in_process_would() {
        for password in [
            "password",
            "correct horse battery staple",
            "Bench-only: amber falcon 7 trombone!",
            "ünïcödé ünïcödé",
            "4@8({[<369!|70$5+%2",
            "line\nbreaks\r\nand \"quotes\"",
        ] {
            let mut answer = Vec::new();
            answer_in_child(password.as_bytes(), &mut answer).expect("answered");
            let answer: Option<String> = serde_json::from_slice(&answer).expect("JSON");
            assert_eq!(answer, password_weakness(password), "{password}");
        }
    }

    #[test]
    fn the_estimate_is_the_childs_answer_and_the_password_its_input() {
        // The child echoes its input back as the message: what it printed is
        // the answer, and what it read was the password, whole.
        let echo = shell(r#"printf '"child read: %s"' "$(cat)""#);
        assert_eq!(
            echo.weakness("a strong enough password, 2 words"),
            Some("child read: a strong enough password, 2 words".into())
        );
        // A child that answers without reading its input: the broken pipe
        // (1 MiB does not fit the pipe) is no failure.
        let unread = "x".repeat(1 << 20);
        assert_eq!(
            shell(r#"printf '"done"'"#).weakness(&unread),
            Some("done".into())
        );
        // `null`: strong enough, although zxcvbn itself would refuse it.
        assert_eq!(
            shell("cat >/dev/null; printf null").weakness("password"),
            None
        );
    }

    #[test]
    fn the_child_sees_none_of_the_servers_environment() {
        // cargo and nextest set it for every test process.
        assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
        let printenv = shell(r#"printf '"%s"' "${CARGO_MANIFEST_DIR-unset}""#);
        // Whether or not it exits before the password is written.
        assert_eq!(printenv.weakness("x"), Some("unset".into()));
    }

    #[test]
    fn a_child_that_cannot_run_or_fails_leaves_the_estimate_to_this_process() {
        let weak = password_weakness("password");
        assert!(weak.is_some());
        let missing = StrengthEstimator::Child {
            program: "/nonexistent/projects-api".into(),
            args: vec![],
        };
        assert_eq!(missing.weakness("password"), weak);
        assert_eq!(shell("exit 3").weakness("password"), weak);
        assert_eq!(shell("printf 'not JSON'").weakness("password"), weak);
    }

    #[test]
    fn a_child_that_does_not_end_is_killed_at_the_deadline() {
        let mut child = Command::new("/bin/sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let started = Instant::now();
        let error = wait_at_most(&mut child, Duration::from_millis(200)).expect_err("timed out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // Killed and reaped: nothing left to wait for.
        assert!(child.try_wait().expect("reaped").is_some());
    }
}
