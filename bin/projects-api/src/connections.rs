//! The process's share of file descriptors, and how many connections each
//! HTTP worker may hold within it.
//!
//! Each client connection costs two descriptors (its socket, and the
//! duplicate its deadline watchdog holds: see
//! `projects_http::client_deadline`). Connections may use at most half of
//! the descriptors, so that the database pool, the metrics listener and
//! the logs always find theirs; beyond the bound a worker stops accepting
//! (new connections wait in the listen backlog) instead of failing with
//! "too many open files".

/// Descriptors one client connection costs.
const DESCRIPTORS_PER_CONNECTION: u64 = 2;

/// actix's own default bound per worker, kept where descriptors allow more.
const MAX_PER_WORKER: usize = 25_000;

/// Never fewer than this per worker, however low the limit.
const MIN_PER_WORKER: usize = 16;

/// Raises the soft limit on open files to the hard limit, as an
/// unprivileged process may; returns the soft limit in force afterwards
/// (`None`: unlimited or unknown).
pub fn raise_open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum || (limit.maximum.is_none() && limit.current.is_some()) {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                tracing::warn!(%error, "cannot raise the open-files limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The bound on open connections per worker for a soft limit of
/// `open_files` descriptors shared by `workers` workers.
pub fn per_worker(open_files: Option<u64>, workers: usize) -> usize {
    let Some(open_files) = open_files else {
        return MAX_PER_WORKER;
    };
    let for_connections = open_files / 2 / DESCRIPTORS_PER_CONNECTION;
    let workers = u64::try_from(workers.max(1)).unwrap_or(u64::MAX);
    usize::try_from(for_connections / workers)
        .unwrap_or(MAX_PER_WORKER)
        .clamp(MIN_PER_WORKER, MAX_PER_WORKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_stay_well_below_the_descriptor_limit() {
        for (open_files, workers) in [(1024, 1), (1024, 2), (4096, 8), (65_536, 2), (1_048_576, 2)]
        {
            let bound = per_worker(Some(open_files), workers) as u64;
            let used = bound * workers as u64 * DESCRIPTORS_PER_CONNECTION;
            assert!(used <= open_files / 2, "{open_files} {workers}: {bound}");
        }
        assert_eq!(per_worker(Some(1024), 2), 128);
        assert_eq!(per_worker(Some(1_048_576), 2), MAX_PER_WORKER);
        assert_eq!(per_worker(None, 4), MAX_PER_WORKER);
        assert_eq!(per_worker(Some(10), 4), MIN_PER_WORKER);
    }

    #[cfg(unix)]
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let after = raise_open_files_limit();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert_eq!(after, limit.current);
        assert_eq!(limit.current, limit.maximum);
    }
}
