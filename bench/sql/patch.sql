-- PATCH /api/v1/projects/{id} with a new description: UPDATE … RETURNING on
-- a random existing project, by its owner (the triggers bump version and
-- updated_at, as for the server).
-- Statement: crates/store/src/projects.rs (update).
\set n random(1, :nprojects)
\set k :n % :nusers
UPDATE projects
SET description = 'Patched by the pgbench ceiling of the patch scenario.'
WHERE id = bench_project_id(:n) AND owner_id = bench_user_id(:k)
RETURNING id, owner_id, name, description, status, version, created_at, updated_at;
