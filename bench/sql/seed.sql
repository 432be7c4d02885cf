-- Seeds the bench database (run by bench/bench.py through psql, after the
-- server has applied its migrations). Inputs, as psql variables:
--   :nusers, :nprojects   how many users and projects
--   :'hash'               a real argon2 PHC string (the API hashed it)
--
-- Ids are a pure function of a row number, so that pgbench can name a random
-- existing row with arithmetic alone (no lookup table in the measured
-- statement): project n has id bench_project_id(n) and belongs to user
-- n % nusers, whose id is bench_user_id(n % nusers). Both are laid out like
-- UUID v7 (48-bit millisecond timestamp, version 7, variant 10), with the
-- row number in the random bits, so they sort by creation time as the
-- server's own ids do.
--
-- These two helper functions exist only in the throwaway bench database.

CREATE OR REPLACE FUNCTION bench_user_id(k bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- A plain SQL body (not RETURN …) so that the planner inlines it.
AS $$ SELECT ('0193f6c4a800' || '7000' || '8001' || lpad(to_hex(k), 12, '0'))::uuid $$;

-- Project n was created at 2025-01-01T00:00:00Z + n seconds.
CREATE OR REPLACE FUNCTION bench_project_id(n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (lpad(to_hex(1735689600000 + n * 1000), 12, '0') || '7000' || '8002'
              || lpad(to_hex(n), 12, '0'))::uuid $$;

INSERT INTO users (id, email, name, role, password_hash, created_at, updated_at)
SELECT bench_user_id(k), format('bench-%s@example.com', k), format('Bench user %s', k),
       'user', :'hash', timestamptz '2024-12-31T00:00:00Z', timestamptz '2024-12-31T00:00:00Z'
FROM generate_series(0, :nusers - 1) AS k;

INSERT INTO projects (id, owner_id, name, description, status, created_at, updated_at)
SELECT bench_project_id(n), bench_user_id(n % :nusers), format('Project %s', n),
       CASE WHEN n % 4 = 0 THEN NULL
            ELSE format('Benchmark project number %s, seeded through SQL for the load tests.', n)
       END,
       (ARRAY['active', 'active', 'archived', 'completed'])[n % 4 + 1],
       timestamptz '2025-01-01T00:00:00Z' + n * interval '1 second',
       timestamptz '2025-01-01T00:00:00Z' + n * interval '1 second'
FROM generate_series(1, :nprojects) AS n;

VACUUM (ANALYZE) users;
VACUUM (ANALYZE) projects;
