//! Real SMTP servers over TCP for the mail tests, never a mock transport.
//!
//! [`SmtpServer`] runs aiosmtpd (Debian's `python3-aiosmtpd`, which
//! `.ci/run` and `just test` install when missing) on a free port, storing
//! every message it accepts in a Maildir that the test reads back.
//! [`FailingSmtpServer`] is a small server of our own that answers every
//! recipient with a temporary failure (451), as a mail host in trouble does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The Python that has Debian's aiosmtpd (not a pyenv or venv one).
const PYTHON: &str = "/usr/bin/python3";

/// A message the server received.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .expect("a parsable message")
    }

    /// The envelope recipient (aiosmtpd's `X-RcptTo`).
    pub fn recipient(&self) -> String {
        self.header("X-RcptTo").unwrap_or_default()
    }

    /// A header's value as text, decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        let message = self.parsed();
        message
            .header(name)
            .and_then(|value| value.as_text().map(str::to_owned))
            .or_else(|| {
                // Address headers parse into addresses: give them as text.
                message.header_raw(name).map(|raw| raw.trim().to_owned())
            })
    }

    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_owned()
    }

    pub fn message_id(&self) -> String {
        self.parsed().message_id().unwrap_or_default().to_owned()
    }

    /// The plain-text body, decoded.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|text| text.into_owned())
            .unwrap_or_default()
    }

    /// The HTML body, decoded.
    pub fn html(&self) -> String {
        self.parsed()
            .body_html(0)
            .map(|html| html.into_owned())
            .unwrap_or_default()
    }

    /// The token of the first link `…{path}?token=…` in the text body.
    pub fn token(&self, path: &str) -> Option<String> {
        let text = self.text();
        let marker = format!("{path}?token=");
        let start = text.find(&marker)? + marker.len();
        Some(
            text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect(),
        )
    }
}

/// aiosmtpd on a free port of 127.0.0.1, storing into a Maildir.
#[derive(Debug)]
pub struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    /// Starts the server and waits until it accepts connections. Panics
    /// (failing the test) when aiosmtpd is not installed.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("pa-smtp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder for the received mail");
        let port = free_port().await;
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.join("maildir"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start aiosmtpd ({PYTHON} -m aiosmtpd): {error}; \
                     install it with `apt-get install python3-aiosmtpd` (just test does)"
                )
            });
        let mut server = Self { child, port, dir };
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "aiosmtpd exited at start ({status}): is python3-aiosmtpd installed? \
                     (`apt-get install python3-aiosmtpd`)"
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "aiosmtpd did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    /// `smtp://127.0.0.1:{port}` (plain: a local test server).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .flat_map(|sub| read_dir(&self.dir.join("maildir").join(sub)))
            .filter_map(|path| {
                let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
                Some((modified, path))
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, path)| std::fs::read(path).ok())
            .map(|raw| ReceivedMail { raw })
            .collect()
    }

    /// The messages sent to `address`.
    pub fn messages_to(&self, address: &str) -> Vec<ReceivedMail> {
        self.messages()
            .into_iter()
            .filter(|mail| mail.recipient().eq_ignore_ascii_case(address))
            .collect()
    }

    /// Waits (up to `limit`) until `address` has received `count`
    /// messages, and returns them.
    pub async fn wait_for(
        &self,
        address: &str,
        count: usize,
        limit: Duration,
    ) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let mail = self.messages_to(address);
            if mail.len() >= count {
                return mail;
            }
            assert!(
                started.elapsed() < limit,
                "{address} received {} of {count} messages within {limit:?}",
                mail.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect()
        })
        .unwrap_or_default()
}

async fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .expect("a free port");
    listener.local_addr().expect("a bound address").port()
}

/// An SMTP server that greets, then refuses every recipient with 451 (a
/// temporary failure): deliveries to it must be retried and finally given up.
#[derive(Debug)]
pub struct FailingSmtpServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
    attempts: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl FailingSmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a free port");
        let port = listener.local_addr().expect("a bound address").port();
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = attempts.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    if write
                        .write_all(b"220 failing.test ESMTP\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        let command = line.to_ascii_uppercase();
                        let reply: &[u8] =
                            if command.starts_with("EHLO") || command.starts_with("HELO") {
                                b"250 failing.test\r\n"
                            } else if command.starts_with("MAIL") {
                                b"250 OK\r\n"
                            } else if command.starts_with("RCPT") {
                                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                b"451 4.3.0 try again later\r\n"
                            } else if command.starts_with("QUIT") {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            } else {
                                b"503 5.5.1 bad sequence\r\n"
                            };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            port,
            task,
            attempts,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// How many deliveries reached the recipient step.
    pub fn attempts(&self) -> usize {
        self.attempts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FailingSmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
