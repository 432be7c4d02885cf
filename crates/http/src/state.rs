//! What every handler can reach: the store, and the HTTP settings.

use projects_store::Store;

/// Settings of the HTTP layer, read once at start by the binary.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            body_limit: 16 * 1024,
        }
    }
}

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub config: HttpConfig,
}

impl AppState {
    pub fn new(store: Store, config: HttpConfig) -> Self {
        Self { store, config }
    }
}
