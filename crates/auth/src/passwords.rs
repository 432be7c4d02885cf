//! Password hashing: argon2id with OWASP's parameters (19 MiB, 2 passes,
//! 1 lane) in PHC string format, run on Tokio's blocking pool behind a
//! semaphore so that at most as many hashes run at once as there are cores.
//! A login flood then queues here instead of starving the async workers or
//! allocating 19 MiB per concurrent request.
//!
//! The password-strength estimate (zxcvbn, hundreds of milliseconds for a
//! hostile password; in a child process in the server, see
//! [`StrengthEstimator`]) shares the same bound. The queue in front of it is
//! bounded too: past [`QUEUE_PER_CORE`] callers per running slot, a caller
//! gets [`AuthError::Busy`] at once instead of waiting without end; and an
//! estimate not done within its deadline is [`AuthError::TimedOut`], never a
//! pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::{AuthError, StrengthEstimator};

/// The gauge of password hashes (and strength estimates) waiting for a free
/// core.
pub const QUEUE_DEPTH_GAUGE: &str = "password_hash_queue_depth";

/// How many callers may wait per running slot before more are refused
/// ([`AuthError::Busy`]). 64 per core: on 2 cores, 128 waiting logins are
/// about 6–13 s of hashing, already past most clients' patience, and as many
/// as the bench's largest login concurrency.
pub const QUEUE_PER_CORE: usize = 64;

/// How long a strength estimate may take, waiting included, before the
/// caller gets [`AuthError::TimedOut`]. The capped estimate of the most
/// hostile password takes about 0.5 s on one core.
pub const STRENGTH_DEADLINE: Duration = Duration::from_secs(3);

/// Hashes and verifies passwords off the async runtime, a bounded number at
/// a time. Cheap to clone: clones share the same bound.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    permits: Arc<Semaphore>,
    /// Callers waiting for a permit now, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    strength_deadline: Duration,
    /// Where the strength estimate runs (in a child process, in the server).
    estimator: StrengthEstimator,
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
        let max_concurrent = max_concurrent.max(1);
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: max_concurrent * QUEUE_PER_CORE,
            strength_deadline: STRENGTH_DEADLINE,
            estimator: StrengthEstimator::InProcess,
            params,
            dummy: Arc::new(OnceCell::new()),
        }
    }

    /// The same hasher with at most `max_waiting` callers queued (beyond
    /// them, [`AuthError::Busy`]).
    #[must_use]
    pub fn with_queue_limit(mut self, max_waiting: usize) -> Self {
        self.max_waiting = max_waiting;
        self
    }

    /// The same hasher with another deadline for strength estimates.
    #[must_use]
    pub fn with_strength_deadline(mut self, deadline: Duration) -> Self {
        self.strength_deadline = deadline;
        self
    }

    /// The same hasher with its strength estimates run by `estimator`.
    #[must_use]
    pub fn with_strength_estimator(mut self, estimator: StrengthEstimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// Why a new password is too easy to guess (zxcvbn's feedback), or
    /// `None` when it is strong enough; estimated on the blocking pool under
    /// the same bound as hashing. Past the deadline (waiting included) the
    /// answer is [`AuthError::TimedOut`]: the caller must refuse the
    /// password for now, never accept it unchecked.
    pub async fn weakness(&self, password: &str) -> Result<Option<String>, AuthError> {
        let password = SecretString::from(password);
        let estimator = self.estimator.clone();
        let estimate = self.run(move || estimator.weakness(password.expose_secret()));
        let started = std::time::Instant::now();
        let estimated = tokio::time::timeout(self.strength_deadline, estimate)
            .await
            .map_err(|_| AuthError::TimedOut)?;
        // tokio's timer fires on its next millisecond tick, so an estimate
        // that finishes just past the deadline can still win the race: an
        // answer that came late is late all the same.
        if started.elapsed() > self.strength_deadline {
            return Err(AuthError::TimedOut);
        }
        estimated
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

    /// Runs one hash (or estimate) on the blocking pool once a permit is
    /// free, or refuses at once when the queue is full; the gauge counts the
    /// callers waiting. The permit moves into the blocking task, so that a
    /// caller that stops waiting (a deadline, a client gone) does not free
    /// its slot before the work is done.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(AuthError::HasherClosed),
            Err(TryAcquireError::NoPermits) => self.wait_for_permit().await?,
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            yield_to_requests();
            work()
        })
        .await
        .map_err(|_| AuthError::HasherClosed)
    }

    async fn wait_for_permit(&self) -> Result<OwnedSemaphorePermit, AuthError> {
        let (_waiting, queued) = Waiting::join(&self.waiting);
        if queued >= self.max_waiting {
            return Err(AuthError::Busy);
        }
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AuthError::HasherClosed)
    }
}

/// One caller in the queue: counted in `waiting` and the gauge until it
/// gets its permit, gives up, or is dropped.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// Joins the queue; also returns how many were in it before.
    fn join(counter: &Arc<AtomicUsize>) -> (Self, usize) {
        let before = counter.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!(QUEUE_DEPTH_GAUGE).increment(1.0);
        (Self(counter.clone()), before)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!(QUEUE_DEPTH_GAUGE).decrement(1.0);
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
    async fn a_full_queue_refuses_at_once_and_frees_its_places() {
        let hasher = PasswordHasher::new(1).with_queue_limit(2);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move || hold.recv().ok()).await }
        });
        // Let the first take the only slot, then fill the queue.
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let queued: Vec<_> = (0..2)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.run(|| ()).await })
            })
            .collect();
        while hasher.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| ()).await, Err(AuthError::Busy)));
        release.send(()).expect("release");
        running.await.expect("joins").expect("runs");
        for task in queued {
            task.await.expect("joins").expect("the queued ones run");
        }
        assert_eq!(hasher.waiting.load(Ordering::Acquire), 0);
        hasher.run(|| ()).await.expect("room again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_estimate_past_its_deadline_is_an_error_never_a_pass() {
        let hasher = PasswordHasher::new(1).with_strength_deadline(Duration::from_millis(1));
        // The slot is taken: the estimate cannot even start in time.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.run(move || hold.recv().ok()).await }
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(hasher.weakness("password").await, Err(AuthError::TimedOut));
        release.send(()).expect("release");
        busy.await.expect("joins").expect("runs");
        let hasher = hasher.with_strength_deadline(STRENGTH_DEADLINE);
        assert!(
            hasher
                .weakness("password")
                .await
                .expect("estimated")
                .is_some()
        );
        assert_eq!(
            hasher.weakness("correct horse battery staple").await,
            Ok(None)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_stops_waiting_keeps_the_slot_busy_until_the_work_ends() {
        let hasher = PasswordHasher::new(1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let abandoned = tokio::time::timeout(Duration::from_millis(50), {
            let hasher = hasher.clone();
            async move { hasher.run(move || hold.recv().ok()).await }
        })
        .await;
        assert!(abandoned.is_err(), "the caller gave up");
        assert_eq!(hasher.permits.available_permits(), 0, "still running");
        release.send(()).expect("release");
        let started = std::time::Instant::now();
        while hasher.permits.available_permits() == 0 {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::task::yield_now().await;
        }
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
