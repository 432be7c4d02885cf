//! A real PgBouncer per test, in transaction pooling mode with its default
//! settings, in front of the server of `DATABASE_URL` (every database
//! name passes through, so a test's own database is reachable through it).
//!
//! The binary comes from `PGBOUNCER_BIN`, else `pgbouncer` on the `PATH` or
//! in `/usr/sbin` (Debian's package; `scripts/pgbouncer bin` installs it).
//! Tests that need one are `#[ignore]`d; `just test` runs them.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::database::server_url;

/// A running PgBouncer, stopped when this guard drops.
#[derive(Debug)]
pub struct PgBouncer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl PgBouncer {
    /// Transaction pooling, every other setting at its default.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Transaction pooling plus `settings` (`name = value` lines of the
    /// `[pgbouncer]` section), for a setup a test must see refused.
    pub fn start_with(settings: &[(&str, &str)]) -> Self {
        let server: tokio_postgres::Config = server_url().parse().expect("DATABASE_URL is valid");
        let host = match server.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = server.get_ports().first().copied().unwrap_or(5432);
        Self::in_front_of(&host, port, settings)
    }

    /// A PgBouncer in front of `host:port`, which need not answer.
    pub fn in_front_of(host: &str, server_port: u16, settings: &[(&str, &str)]) -> Self {
        let binary = binary();
        let dir =
            std::env::temp_dir().join(format!("pa-pgbouncer-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("creating the PgBouncer directory");
        let port = free_port();
        let mut ini = format!(
            "[databases]\n* = host={host} port={server_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nauth_file = {dir}/userlist.txt\n\
             pool_mode = transaction\nlogfile = {dir}/pgbouncer.log\n",
            dir = dir.display()
        );
        for (name, value) in settings {
            ini.push_str(&format!("{name} = {value}\n"));
        }
        std::fs::write(dir.join("pgbouncer.ini"), ini).expect("writing pgbouncer.ini");
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n")
            .expect("writing the user list");
        // PgBouncer refuses to run as root; it then runs as postgres, which
        // must be able to write its log here.
        let as_root = is_root();
        if as_root {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777))
                .expect("opening the PgBouncer directory");
        }
        let mut command = Command::new(&binary);
        if as_root {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", binary.display()));
        let bouncer = Self { child, port, dir };
        bouncer.wait_until_listening();
        bouncer
    }

    /// The URL of `database` through this PgBouncer.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What PgBouncer logged, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }

    fn wait_until_listening(&self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("PgBouncer did not listen on {addr}: {}", self.log());
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The PgBouncer binary, or a panic that says how to get one.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PGBOUNCER_BIN").filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("no pgbouncer binary: run `scripts/pgbouncer bin` (installs Debian's) or set PGBOUNCER_BIN")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}
