-- GET /api/v1/projects/{id}: one project by id, visible to its owner (or an
-- admin: the third parameter, false here as the bench users are not admins).
-- Statement: crates/store/src/projects.rs (FIND_VISIBLE), as specified for
-- issue 7; the id and owner come from bench_project_id / bench_user_id (seed.sql).
\set n random(1, :nprojects)
\set k :n % :nusers
\set admin 0
SELECT id, owner_id, name, description, status, version, created_at, updated_at
FROM projects
WHERE id = bench_project_id(:n) AND (owner_id = bench_user_id(:k) OR :admin::boolean);
