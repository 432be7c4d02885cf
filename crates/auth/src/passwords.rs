//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane) in PHC string format, run on Tokio's blocking pool behind a
//! semaphore so that at most as many hashes run at once as there are cores.
//! A login flood then queues here instead of starving the async workers or
//! allocating 19 MiB per concurrent request.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{OnceCell, Semaphore};

use crate::AuthError;

/// The gauge of password hashes waiting for a free core.
pub const QUEUE_DEPTH_GAUGE: &str = "password_hash_queue_depth";

/// Hashes and verifies passwords off the async runtime, a bounded number at
/// a time. Cheap to clone: clones share the same bound.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    params: Params,
    /// A hash of a fixed password, verified when a login names an unknown
    /// e-mail so that it costs what a wrong password costs.
    dummy: Arc<OnceCell<String>>,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The password is wrong (or there was no user).
    Mismatch,
    /// The password is right. When the stored hash used older parameters,
    /// `rehashed` holds a fresh hash with the current ones, to store.
    Match { rehashed: Option<String> },
}

impl Default for PasswordHasher {
    /// At most one hash per core at a time, with OWASP's parameters.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::new(cores)
    }
}

impl PasswordHasher {
    /// A hasher that runs at most `max_concurrent` (≥ 1) hashes at once.
    pub fn new(max_concurrent: usize) -> Self {
        Self::with_params(max_concurrent, owasp_params())
    }

    /// A hasher with other argon2id parameters (tests use this to create
    /// "old" hashes).
    pub fn with_params(max_concurrent: usize, params: Params) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            params,
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// Hashes a password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = SecretString::from(password);
        let params = self.params.clone();
        self.run(move || hash_with(&params, password.expose_secret()))
            .await?
    }

    /// Verifies a password against a stored PHC hash; `None` (no such user)
    /// verifies against a fixed dummy hash and always mismatches, so that an
    /// unknown e-mail costs one verification like a wrong password does.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verification, AuthError> {
        let known = stored.is_some();
        let stored = match stored {
            Some(stored) => stored.to_owned(),
            None => self.dummy_hash().await?.clone(),
        };
        let password = SecretString::from(password);
        let params = self.params.clone();
        self.run(move || {
            let parsed = PasswordHash::new(&stored).map_err(|_| AuthError::MalformedHash)?;
            let matches = verify_with(&parsed, password.expose_secret().as_bytes())?;
            if !(matches && known) {
                return Ok(Verification::Mismatch);
            }
            let rehashed = if is_current(&parsed, &params) {
                None
            } else {
                Some(hash_with(&params, password.expose_secret())?)
            };
            Ok(Verification::Match { rehashed })
        })
        .await?
    }

    /// Computes the dummy hash now, so that the first login for an unknown
    /// e-mail does not cost two hashes (which would tell it apart).
    pub async fn warm_up(&self) -> Result<(), AuthError> {
        self.dummy_hash().await.map(|_| ())
    }

    /// Whether a stored hash already uses this hasher's parameters.
    pub fn is_current(&self, stored: &str) -> bool {
        PasswordHash::new(stored).is_ok_and(|parsed| is_current(&parsed, &self.params))
    }

    async fn dummy_hash(&self) -> Result<&String, AuthError> {
        self.dummy
            .get_or_try_init(|| async {
                let params = self.params.clone();
                self.run(move || hash_with(&params, "not a real password: timing only"))
                    .await?
            })
            .await
    }

    /// Runs one hash on the blocking pool once a permit is free; the gauge
    /// counts the callers waiting for one.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let gauge = metrics::gauge!(QUEUE_DEPTH_GAUGE);
        gauge.increment(1.0);
        let permit = self.permits.acquire().await;
        gauge.decrement(1.0);
        let _permit = permit.map_err(|_| AuthError::HasherClosed)?;
        tokio::task::spawn_blocking(move || {
            yield_to_requests();
            work()
        })
        .await
        .map_err(|_| AuthError::HasherClosed)
    }
}

/// How much lower than the rest of the server a hashing thread runs (a
/// `nice` increment). At nice 5 the kernel gives such a thread about a third
/// of the weight of a normal one, so during a login flood request workers
/// and PostgreSQL go first while logins still progress, and logins alone
/// still use every core. The bench measured GET by id during a login flood
/// at nice 0, 5 and 10 (bench/README.md): 0 let the flood take half of the
/// GET throughput; 10 starved the logins themselves (4-7 per second, some
/// past the client's 10 s timeout); 5 kept 71-77 % of the GET throughput
/// with 9-10 logins per second.
const HASHING_NICENESS: i32 = 5;

/// Lowers the calling thread's scheduling priority, once per thread. The
/// blocking pool's threads that ever hashed keep it; nothing else the
/// server runs there is CPU-bound (tokio-postgres's address lookups).
fn yield_to_requests() {
    #[cfg(target_os = "linux")]
    {
        use std::cell::Cell;
        thread_local! {
            static LOWERED: Cell<bool> = const { Cell::new(false) };
        }
        if !LOWERED.get() {
            LOWERED.set(true);
            // On Linux, PRIO_PROCESS with a thread id applies to that thread.
            let thread = rustix::thread::gettid();
            if let Err(error) = rustix::process::setpriority_process(Some(thread), HASHING_NICENESS)
            {
                tracing::warn!(%error, "could not lower the priority of a hashing thread");
            }
        }
    }
}

/// OWASP's recommended argon2id parameters: m = 19 MiB, t = 2, p = 1.
pub fn owasp_params() -> Params {
    Params::new(19 * 1024, 2, 1, None).unwrap_or(Params::DEFAULT)
}

/// At least this many bytes are reserved for argon2's memory: glibc's
/// malloc serves a request of 32 MiB or more with its own `mmap` and gives
/// it back with `munmap` when freed, whatever its adaptive mmap threshold has
/// become. A 19 MiB buffer (argon2's own `Vec`), by contrast, stays cached in
/// the malloc arena of whichever blocking-pool thread ran the hash once that
/// threshold has adapted: the bench measured the server's resident memory
/// growing by about 19 MiB per login to 450–650 MiB, and staying there under
/// read load. Only the blocks argon2 uses are ever touched, so the larger
/// reservation costs address space, not memory.
const RESERVED_BYTES: usize = 32 * 1024 * 1024 + 4096;

/// argon2's working memory for `params`, in an allocation that goes back to
/// the operating system when dropped (see [`RESERVED_BYTES`]).
fn argon2_memory(params: &Params) -> Vec<Block> {
    let blocks = params.block_count();
    let mut memory = Vec::with_capacity(blocks.max(RESERVED_BYTES.div_ceil(Block::SIZE)));
    memory.resize(blocks, Block::default());
    memory
}

/// argon2id over `password` with a fresh salt, as a PHC string.
fn hash_with(params: &Params, password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|_| AuthError::Hashing)?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                out,
                argon2_memory(params),
            )
            .map_err(Into::into)
    })
    .map_err(|_| AuthError::Hashing)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|_| AuthError::Hashing)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches `stored`, as argon2's `verify_password`
/// decides it (the stored algorithm, version, parameters and salt; the
/// outputs compared in constant time), with the memory of
/// [`argon2_memory`].
fn verify_with(stored: &PasswordHash<'_>, password: &[u8]) -> Result<bool, AuthError> {
    let (Some(salt), Some(expected)) = (stored.salt, stored.hash) else {
        return Err(AuthError::MalformedHash);
    };
    let algorithm = Algorithm::try_from(stored.algorithm).map_err(|_| AuthError::MalformedHash)?;
    let version = stored
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|_| AuthError::MalformedHash)?
        .unwrap_or_default();
    let params = Params::try_from(stored).map_err(|_| AuthError::MalformedHash)?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|_| AuthError::MalformedHash)?;
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password, salt_bytes, out, argon2_memory(&params))
            .map_err(Into::into)
    })
    .map_err(|_| AuthError::MalformedHash)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

fn is_current(hash: &PasswordHash<'_>, params: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && stored.m_cost() == params.m_cost()
        && stored.t_cost() == params.t_cost()
        && stored.p_cost() == params.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery staple";

    #[test]
    fn hashes_agree_with_argon2s_own_hasher_and_verifier() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(8 * 1024, 1, 1, None).expect("params");
        let ours = hash_with(&params, PASSWORD).expect("hashes");
        let parsed = PasswordHash::new(&ours).expect("a PHC string");
        assert!(
            Argon2::default()
                .verify_password(PASSWORD.as_bytes(), &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .expect("hashes")
            .to_string();
        let parsed = PasswordHash::new(&theirs).expect("a PHC string");
        assert!(verify_with(&parsed, PASSWORD.as_bytes()).expect("verifies"));
        assert!(!verify_with(&parsed, b"correct horse battery stapl").expect("verifies"));
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_priority_than_the_server() {
        let hasher =
            PasswordHasher::with_params(1, Params::new(8 * 1024, 1, 1, None).expect("params"));
        let own = rustix::process::getpriority_process(None).expect("own priority");
        let hashing = hasher
            .run(|| {
                let thread = rustix::thread::gettid();
                rustix::process::getpriority_process(Some(thread)).expect("thread priority")
            })
            .await
            .expect("runs");
        assert_eq!(hashing, (own + HASHING_NICENESS).min(19));
    }

    #[test]
    fn argon2_memory_is_large_enough_for_malloc_to_unmap_it() {
        let memory = argon2_memory(&owasp_params());
        assert_eq!(memory.len(), owasp_params().block_count());
        assert!(memory.capacity() * Block::SIZE >= RESERVED_BYTES);
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_with_owasp_parameters() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash(PASSWORD).await.expect("hashes");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains(PASSWORD));
        assert_ne!(hash, hasher.hash(PASSWORD).await.expect("hashes"), "salted");
        assert!(hasher.is_current(&hash));
    }

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash(PASSWORD).await.expect("hashes");
        assert_eq!(
            hasher
                .verify(PASSWORD, Some(&hash))
                .await
                .expect("verifies"),
            Verification::Match { rehashed: None }
        );
        for wrong in [
            "correct horse battery stapl",
            "Correct horse battery staple",
            "",
        ] {
            assert_eq!(
                hasher.verify(wrong, Some(&hash)).await.expect("verifies"),
                Verification::Mismatch,
                "{wrong:?}"
            );
        }
    }

    #[tokio::test]
    async fn passwords_are_neither_truncated_nor_case_folded() {
        let hasher = PasswordHasher::new(2);
        let long = "ж".repeat(128);
        let hash = hasher.hash(&long).await.expect("hashes");
        let shorter = "ж".repeat(127);
        assert_eq!(
            hasher
                .verify(&shorter, Some(&hash))
                .await
                .expect("verifies"),
            Verification::Mismatch
        );
        assert!(matches!(
            hasher.verify(&long, Some(&hash)).await.expect("verifies"),
            Verification::Match { .. }
        ));
    }

    #[tokio::test]
    async fn an_unknown_user_spends_a_verification_and_never_matches() {
        let hasher = PasswordHasher::new(2);
        assert_eq!(
            hasher
                .verify("not a real password: timing only", None)
                .await
                .expect("verifies"),
            Verification::Mismatch
        );
        assert!(
            hasher.dummy.get().is_some(),
            "the dummy hash was computed and used"
        );
    }

    #[tokio::test]
    async fn hashes_with_older_parameters_are_rehashed_on_success() {
        let old =
            PasswordHasher::with_params(1, Params::new(8 * 1024, 1, 1, None).expect("params"));
        let stored = old.hash(PASSWORD).await.expect("hashes");
        let current = PasswordHasher::new(2);
        assert!(!current.is_current(&stored));
        let Verification::Match {
            rehashed: Some(new),
        } = current
            .verify(PASSWORD, Some(&stored))
            .await
            .expect("verifies")
        else {
            panic!("expected a re-hash");
        };
        assert!(current.is_current(&new));
        assert_eq!(
            current
                .verify("wrong password", Some(&stored))
                .await
                .expect("verifies"),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_panic() {
        let hasher = PasswordHasher::new(1);
        assert!(matches!(
            hasher.verify(PASSWORD, Some("not a hash")).await,
            Err(AuthError::MalformedHash)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_bound_runs_at_once() {
        let hasher = PasswordHasher::new(1);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let hasher = hasher.clone();
                let (running, peak) = (running.clone(), peak.clone());
                tokio::spawn(async move {
                    hasher
                        .run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            peak.fetch_max(now, SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joins").expect("runs");
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
