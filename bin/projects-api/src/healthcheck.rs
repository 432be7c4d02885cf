//! `projects-api healthcheck`: asks the server on `BIND_ADDR` for
//! `/health/ready` and exits 0 only on 200. For container health checks in
//! an image without a shell or curl: plain HTTP/1.0 over a socket, bounded
//! in time.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(3);

pub fn main(bind_addr: SocketAddr, path: &str) -> ExitCode {
    // A server listening on every address answers on loopback.
    let mut target = bind_addr;
    if target.ip().is_unspecified() {
        target.set_ip(if target.is_ipv4() {
            [127, 0, 0, 1].into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    match probe(target, path) {
        Ok(200) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("healthcheck: {path} on {target} answered {status}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("healthcheck: {path} on {target}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn probe(target: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {target}\r\n\r\n")?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut head[read..])? {
            0 => break,
            n => read += n,
        }
    }
    // "HTTP/1.1 200 OK"
    std::str::from_utf8(&head[..read])
        .ok()
        .and_then(|line| line.get(9..12))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
