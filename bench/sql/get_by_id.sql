-- GET /api/v1/projects/{id}: one project by id, visible to its owner, or to
-- an admin whose role the same statement confirms (the third parameter is
-- false here: the bench users are not admins, as the server's token says).
-- Statement: crates/store/src/projects.rs, FIND ("projects.find"), verbatim
-- but for the parameters: $1 = bench_project_id(n), $2 = bench_user_id(k)
-- (seed.sql), $3 = false. Keep it equal to the constant.
\set n random(1, :nprojects)
\set k :n % :nusers
\set admin 0
SELECT id, owner_id, name, description, status, version, created_at, updated_at
FROM projects
WHERE id = bench_project_id(:n)
  AND (owner_id = bench_user_id(:k)
       OR (:admin::boolean AND EXISTS (SELECT 1 FROM users WHERE id = bench_user_id(:k) AND role = 'admin')));
