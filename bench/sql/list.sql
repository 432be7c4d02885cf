-- GET /api/v1/projects?limit=20: the first keyset page of the caller's own
-- projects, newest first; limit + 1 rows tell whether a next page exists.
-- Statement: crates/store/src/projects.rs, the LIST shape (admin = false,
-- all = false, sort = -created_at, no status, no cursor), verbatim but for
-- the parameters: $1 = bench_user_id(k), $2 = 21. Keep it equal.
\set k random(0, :nusers - 1)
\set lim 21
SELECT id, owner_id, name, description, status, version, created_at, updated_at
FROM projects
WHERE owner_id = bench_user_id(:k)
ORDER BY created_at DESC, id DESC
LIMIT :lim;
