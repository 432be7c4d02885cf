//! `/api/v1/projects` over HTTP, in-process, against a real PostgreSQL:
//! CRUD with ownership, validation and mass assignment, optimistic
//! concurrency, lists with signed cursors, and the walk invariant.

mod projects {
    mod crud;
    mod idempotency;
    mod lists;
}
