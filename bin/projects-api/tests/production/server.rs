//! The `projects-api` binary, started for a test and stopped with it.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cluster::free_port;

#[derive(Debug)]
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
    /// Reads stderr into `logs` until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the binary with `DATABASE_URL` and the given variables, and
    /// waits until it answers `/health/live`.
    pub async fn start(database_url: &str, vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_projects-api"));
        command.arg("serve");
        Self::start_command(command, database_url, vars).await
    }

    /// [`Server::start`] with the soft limit on open files lowered to
    /// `soft` first (by the shell's `ulimit`), as a service manager may.
    pub async fn start_with_open_files(
        soft: u64,
        database_url: &str,
        vars: &[(&str, &str)],
    ) -> Self {
        Self::start_under_ulimit(&format!("-Sn {soft}"), database_url, vars).await
    }

    /// [`Server::start`] with both limits on open files set to `limit`,
    /// so the server cannot raise it.
    pub async fn start_with_hard_open_files(
        limit: u64,
        database_url: &str,
        vars: &[(&str, &str)],
    ) -> Self {
        Self::start_under_ulimit(&format!("-n {limit}"), database_url, vars).await
    }

    async fn start_under_ulimit(ulimit: &str, database_url: &str, vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("ulimit {ulimit} && exec \"$0\" serve"))
            .arg(env!("CARGO_BIN_EXE_projects-api"));
        Self::start_command(command, database_url, vars).await
    }

    async fn start_command(command: Command, database_url: &str, vars: &[(&str, &str)]) -> Self {
        let server = Self::spawn_command(command, database_url, vars);
        server.wait_until_live().await;
        server
    }

    /// [`Server::start`] without waiting for it to answer: for a server
    /// that is expected to refuse to start.
    pub fn spawn(database_url: &str, vars: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_projects-api"));
        command.arg("serve");
        Self::spawn_command(command, database_url, vars)
    }

    fn spawn_command(mut command: Command, database_url: &str, vars: &[(&str, &str)]) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        command
            // Away from the repository, so that no .env is read.
            .current_dir(std::env::temp_dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            // Random for each server: published secrets are refused.
            .env(
                "JWT_SECRET",
                format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                ),
            )
            .env("BIND_ADDR", addr.to_string())
            .env("LOG_FORMAT", "json")
            .env("METRICS_ADDR", "off")
            .env("RUST_LOG", "info")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("start projects-api");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        Self {
            child,
            addr,
            logs,
            reader: Some(reader),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("logs").clone()
    }

    /// Whether a line matching `wanted` is logged within 10 s (the reader
    /// of stderr may lag behind the server on a busy machine).
    pub async fn logged(&self, wanted: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.logs().iter().any(|line| wanted(line)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_until_live(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(response) = client.get(self.url("/health/live")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("projects-api did not start: {:#?}", self.logs());
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`; once it has, every
    /// line it logged is in [`Server::logs`].
    pub async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                if let Some(reader) = self.reader.take() {
                    reader.join().expect("the log reader");
                }
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
