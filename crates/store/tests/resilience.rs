//! How the store behaves when PostgreSQL pushes back: transaction
//! conflicts and timeouts are "unavailable" (503, the client may retry),
//! and slow statements are logged by name only.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use projects_domain::{Email, Role};
use projects_store::{NewUser, Store, StoreConfig, StoreError};
use projects_testkit::TestDb;

#[tokio::test]
async fn serialization_failures_and_deadlocks_are_unavailable() {
    // Both roll the whole transaction back, so the client may send the
    // request again: 503 with Retry-After. (No transaction of the store runs
    // SERIALIZABLE, and locks on several rows are taken in id order.)
    let db = TestDb::new().await;
    let client = db.client().await;
    for code in ["serialization_failure", "deadlock_detected"] {
        let error = client
            .batch_execute(&format!(
                "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{code}'; END $$"
            ))
            .await
            .map_err(StoreError::from)
            .expect_err("raises");
        assert!(
            matches!(error, StoreError::Unavailable(_)),
            "{code}: {error:?}"
        );
        assert!(!error.is_connection_lost(), "{code}");
    }
}

#[tokio::test]
async fn a_statement_over_the_timeout_is_unavailable() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute("SET statement_timeout = 50")
        .await
        .expect("set");
    let error = client
        .batch_execute("SELECT pg_sleep(1)")
        .await
        .map_err(StoreError::from)
        .expect_err("times out");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(!error.is_connection_lost());
}

#[tokio::test]
async fn a_lost_connection_is_recognised() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    db.client()
        .await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate");
    let error = client
        .batch_execute("SELECT 1")
        .await
        .map_err(StoreError::from)
        .expect_err("the connection is gone");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.is_connection_lost());
}

/// Collects the formatted log output of the current thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn slow_statements_log_their_name_and_duration_but_never_their_parameters() {
    let db = TestDb::new().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = StoreConfig::new(db.url());
    config.slow_query = Duration::ZERO;
    let store = Store::connect(&config).expect("valid");
    let email = "slow.query@example.com";
    let user = store
        .users()
        .insert(&NewUser {
            email: Email::parse(email).expect("valid"),
            name: "Grace Hopper".into(),
            role: Role::User,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        })
        .await
        .expect("insert");
    store.users().find_by_id(user.id).await.expect("found");
    store.close();

    let logs = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("UTF-8");
    let slow: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .filter(|line: &serde_json::Value| line["fields"]["message"] == "slow query")
        .collect();
    assert!(slow.len() >= 2, "{logs}");
    for line in &slow {
        assert!(
            line["fields"]["db.statement"]
                .as_str()
                .is_some_and(|n| n.starts_with("users."))
        );
        assert!(line["fields"]["duration_ms"].is_u64());
    }
    assert!(!logs.contains(email), "parameters leaked: {logs}");
    assert!(
        !logs.contains(&user.id.to_string()),
        "parameters leaked: {logs}"
    );
    assert!(!logs.contains("Grace"), "parameters leaked: {logs}");
}

/// A TCP proxy to PostgreSQL whose existing connections can be made to go
/// silent: bytes are still accepted but never forwarded nor answered, as
/// with a server that died without closing its sockets.
struct SilencingProxy {
    port: u16,
    switches: Switches,
}

type Switches = Arc<Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>>;

impl SilencingProxy {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let switches = Switches::default();
        let registry = switches.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                // Connections opened from now on work; silence applies to
                // those open when it was switched on.
                let silent = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let switch = silent.clone();
                registry.lock().expect("switches").push(switch);
                tokio::spawn(pipe(inbound, outbound, silent));
            }
        });
        Self { port, switches }
    }

    fn silence_existing(&self) {
        for switch in self.switches.lock().expect("switches").iter() {
            switch.store(true, Ordering::SeqCst);
        }
    }
}

async fn pipe(
    inbound: tokio::net::TcpStream,
    outbound: tokio::net::TcpStream,
    silent: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let up_silent = silent.clone();
    let up = tokio::spawn(async move {
        let mut buffer = [0u8; 8192];
        while let Ok(n) = in_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            if !up_silent.load(Ordering::SeqCst) && out_write.write_all(&buffer[..n]).await.is_err()
            {
                break;
            }
        }
    });
    let mut buffer = [0u8; 8192];
    while let Ok(n) = out_read.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if !silent.load(Ordering::SeqCst) && in_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    // Keep the client's side open (silent) until the client gives up.
    let _ = up.await;
}

/// A store whose connections go through a `SilencingProxy`.
async fn proxied_store(db: &TestDb, timeout: Duration) -> (Store, SilencingProxy) {
    let pg: tokio_postgres::Config = db.url().parse().expect("a URL");
    let (host, port) = match (pg.get_hosts().first(), pg.get_ports().first()) {
        (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) => (host.clone(), *port),
        _ => panic!("the test server must be reached over TCP"),
    };
    let target = tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address");
    let proxy = SilencingProxy::start(target).await;
    let proxied = db.url().replacen(
        &format!("{host}:{port}"),
        &format!("127.0.0.1:{}", proxy.port),
        1,
    );
    assert_ne!(proxied, db.url(), "the URL names host:port");
    let mut config = StoreConfig::new(proxied);
    config.pool_size = 1;
    config.timeout = timeout;
    (Store::connect(&config).expect("valid"), proxy)
}

#[tokio::test]
async fn a_pooled_connection_to_a_silent_server_is_replaced_not_waited_on() {
    let db = TestDb::new().await;
    let (store, proxy) = proxied_store(&db, Duration::from_secs(5)).await;
    assert!(store.ready().await.expect("ready through the proxy"));

    // The pooled connection goes idle, then its server goes silent.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    proxy.silence_existing();
    let started = std::time::Instant::now();
    let ready = tokio::time::timeout(Duration::from_secs(4), store.ready())
        .await
        .expect("the checkout does not hang on the silent connection");
    assert!(ready.expect("a fresh connection answers"));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    store.close();
}

#[tokio::test]
async fn a_statement_on_a_connection_that_went_silent_is_unavailable_in_bounded_time() {
    let db = TestDb::new().await;
    let (store, proxy) = proxied_store(&db, Duration::from_millis(500)).await;
    let missing = projects_domain::UserId::new();
    let error = store
        .users()
        .find_by_id(missing)
        .await
        .expect_err("no such user");
    assert!(matches!(error, StoreError::NotFound), "{error:?}");

    // At once, so the connection is not checked on checkout: the statement
    // itself must give up.
    proxy.silence_existing();
    let started = std::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(5), store.users().find_by_id(missing))
        .await
        .expect("never hangs")
        .expect_err("no answer");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    // statement timeout (500 ms) + the store's margin (1 s) + slack
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    store.close();
}

#[tokio::test]
async fn a_checkout_from_a_pool_whose_connections_are_all_busy_gives_up_in_bounded_time() {
    let db = TestDb::new().await;
    let mut config = StoreConfig::new(db.url());
    config.pool_size = 1;
    config.timeout = Duration::from_millis(300);
    let store = Store::connect(&config).expect("valid");
    let missing = projects_domain::UserId::new();
    let held = store.connection().await.expect("the only connection");

    let started = std::time::Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(5), store.users().find_by_id(missing))
        .await
        .expect("never hangs")
        .expect_err("no connection is free");
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "{waited:?}"
    );

    // Once the connection is back, checkouts get it at once.
    drop(held);
    let error = store
        .users()
        .find_by_id(missing)
        .await
        .expect_err("no such user");
    assert!(matches!(error, StoreError::NotFound), "{error:?}");
    store.close();
}
