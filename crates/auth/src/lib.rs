//! Credentials for projects-api: argon2id password hashing on a bounded
//! blocking pool, JWT access tokens (issued and verified with the algorithm
//! pinned), and opaque refresh tokens with their hashes.
//!
//! This crate knows nothing of SQL or HTTP: it turns secrets into hashes and
//! tokens, and tokens back into claims.

mod account_tokens;
mod error;
mod passwords;
mod refresh;
mod strength;
mod tokens;

pub use account_tokens::{AccountToken, AccountTokenKey, address_hash};
pub use error::{AuthError, TokenError};
pub use passwords::{
    PasswordHasher, QUEUE_DEPTH_GAUGE, QUEUE_PER_CORE, STRENGTH_DEADLINE, Verification,
    owasp_params,
};
pub use refresh::{RefreshToken, RefreshTokenHash, SuccessorKey};
pub use strength::{StrengthEstimator, answer_in_child};
pub use tokens::{
    AccessClaims, AccessToken, Claims, LEEWAY_SECONDS, TokenConfig, TokenService, bearer_token,
};
