-- PATCH /api/v1/projects/{id} with a new description and `If-Match: *`, on
-- a random existing project, by its owner: one UPDATE … RETURNING, in
-- autocommit as the server runs it (a second statement, only when no row is
-- touched, tells a stale version from a missing project; here a row always
-- is). The BEFORE UPDATE trigger (one since V5) bumps the version and sets
-- updated_at.
-- Statement: crates/store/src/projects.rs, UPDATE ("projects.update"),
-- verbatim but for the parameters: $1 = bench_project_id(n),
-- $2 = bench_user_id(k), $3 = false, $4 = NULL (name not sent), $5 = true
-- (description sent), $6 = the description, $7 = NULL (status not sent),
-- $8 = NULL (`If-Match: *` accepts any version). pgbench cannot bind a NULL
-- variable, so the NULLs are typed literals. Keep it equal to the constant.
\set n random(1, :nprojects)
\set k :n % :nusers
\set admin 0
\set sent 1
UPDATE projects SET name = COALESCE(NULL::text, name),
    description = CASE WHEN :sent::boolean THEN 'Patched by the patch scenario of the bench.' ELSE description END,
    status = COALESCE(NULL::text, status)
WHERE id = bench_project_id(:n)
  AND (owner_id = bench_user_id(:k)
       OR (:admin::boolean AND EXISTS (SELECT 1 FROM users WHERE id = bench_user_id(:k) AND role = 'admin')))
  AND (NULL::int4[] IS NULL OR version = ANY(NULL::int4[]))
RETURNING id, owner_id, name, description, status, version, created_at, updated_at;
