//! A PostgreSQL cluster of the test's own, under a temporary directory, that
//! the test can stop and start (the shared development server must not be
//! stopped). Made with the machine's `initdb` and `pg_ctl`, as `scripts/db`
//! does; as root they run as the `postgres` user.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    bindir: PathBuf,
    port: u16,
}

/// Where `initdb` is: `PG_BINDIR`, the `PATH`, or the newest of the
/// distribution's versioned directories. None is a hard failure: these
/// tests must not pass without a database to stop.
fn bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BINDIR") {
        return PathBuf::from(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() {
                return dir;
            }
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").is_file())
        .collect();
    candidates.sort_by_key(|bin| {
        bin.parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
            .and_then(|name| name.parse::<u32>().ok())
            .unwrap_or(0)
    });
    candidates.pop().unwrap_or_else(|| {
        panic!(
            "no PostgreSQL initdb found (PATH, /usr/lib/postgresql/*/bin, or PG_BINDIR): \
             these tests stop and start a cluster of their own and cannot run without one"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}

impl Cluster {
    /// Initialises and starts a new cluster.
    pub fn start() -> Self {
        let bindir = bindir();
        let dir = std::env::temp_dir().join(format!(
            "projects-api-test-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        let cluster = Self {
            dir,
            bindir,
            port: free_port(),
        };
        if is_root() {
            let status = Command::new("chown")
                .arg("postgres")
                .arg(&cluster.dir)
                .status()
                .expect("chown");
            assert!(
                status.success(),
                "cannot give the cluster directory to postgres"
            );
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = ''\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            cluster.port
        );
        let conf_path = Path::new(&cluster.data()).join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).expect("postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).expect("write postgresql.conf");
        cluster.resume();
        cluster
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) cluster again, on the same port.
    pub fn resume(&self) {
        let log = self.dir.join("postgres.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// Stops the cluster: sessions are ended, new connections refused.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Freezes every process of the cluster (SIGSTOP): sockets stay open
    /// and connections look alive, but nothing answers.
    pub fn freeze(&self) {
        assert!(self.signal_all("STOP"), "cannot freeze the cluster");
    }

    /// Undoes `freeze`.
    pub fn thaw(&self) {
        assert!(self.signal_all("CONT"), "cannot thaw the cluster");
    }

    /// The postmaster and its children, by id (from `postmaster.pid`).
    fn signal_all(&self, signal: &str) -> bool {
        let Ok(pidfile) = std::fs::read_to_string(Path::new(&self.data()).join("postmaster.pid"))
        else {
            return false;
        };
        let Some(postmaster) = pidfile.lines().next().map(str::trim).map(str::to_owned) else {
            return false;
        };
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        let mut pids: Vec<String> = children.split_whitespace().map(str::to_owned).collect();
        pids.push(postmaster);
        Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .status()
            .is_ok_and(|status| status.success())
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bindir.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command.args(args).current_dir(&self.dir);
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let output = self
            .command(program, args)
            .output()
            .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // A frozen cluster would ignore the stop below.
        let _ = self.signal_all("CONT");
        let _ = self
            .command(
                "pg_ctl",
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            )
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
