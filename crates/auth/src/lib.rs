//! Credentials for projects-api: argon2id password hashing on a bounded
//! blocking pool, JWT access tokens (issued and verified with the algorithm
//! pinned), and opaque refresh tokens with their hashes.
//!
//! This crate knows nothing of SQL or HTTP: it turns secrets into hashes and
//! tokens, and tokens back into claims.

mod refresh;

pub use refresh::{RefreshToken, RefreshTokenHash};
