//! `MIGRATE_ON_START`: `serve` applies pending migrations in a child process
//! of its own binary (`projects-api migrate`, the same command an operator
//! runs) and starts serving only once that child has exited successfully.
//!
//! Why a child: refinery, the embedded SQL and the migration code run once
//! and never again, yet the pages they touch would stay resident in the
//! server for its whole life (0.7-0.8 MB; see bench/README.md, "Memory").
//! The child shares the server's standard error, environment and working
//! directory, so its log lines and its configuration are the server's.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};

/// Runs `program migrate` and waits for it. An error when it cannot be
/// started or does not succeed: the caller must not serve then, since the
/// database may not be migrated.
pub fn migrate(program: &Path) -> anyhow::Result<()> {
    let status = Command::new(program)
        .arg("migrate")
        .stdin(Stdio::null())
        .status()
        .with_context(|| {
            format!(
                "cannot start `{} migrate` to apply the migrations (MIGRATE_ON_START): \
                 not serving an unmigrated database",
                program.display()
            )
        })?;
    if !status.success() {
        bail!(
            "`{} migrate` failed ({status}; its error is logged above): \
             the migrations were not applied (MIGRATE_ON_START), not serving",
            program.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_cannot_start_is_an_error_that_says_so() {
        let error = migrate(Path::new("/nonexistent/projects-api")).expect_err("no such program");
        let message = format!("{error:#}");
        assert!(message.contains("cannot start"), "{message}");
        assert!(
            message.contains("/nonexistent/projects-api migrate"),
            "{message}"
        );
        assert!(message.contains("unmigrated"), "{message}");
    }

    #[test]
    fn a_child_that_fails_is_an_error_with_its_status() {
        // `false migrate` exits 1.
        let error = migrate(Path::new("false")).expect_err("false fails");
        let message = format!("{error:#}");
        assert!(message.contains("failed (exit status: 1"), "{message}");
        assert!(message.contains("not serving"), "{message}");
    }

    #[test]
    fn a_child_that_succeeds_is_ok() {
        // `true migrate` exits 0.
        migrate(Path::new("true")).expect("true succeeds");
    }
}
