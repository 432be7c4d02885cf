-- GET /api/v1/projects?limit=20: the first keyset page of the caller's own
-- projects, newest first; limit + 1 rows tell whether a next page exists.
-- Statement: crates/store/src/projects.rs (list by owner, -created_at).
\set k random(0, :nusers - 1)
\set lim 21
SELECT id, owner_id, name, description, status, version, created_at, updated_at
FROM projects
WHERE owner_id = bench_user_id(:k)
ORDER BY created_at DESC, id DESC
LIMIT :lim;
