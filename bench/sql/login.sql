-- POST /api/v1/auth/login, database part only: the user by e-mail address
-- (through the unique index on lower(email)). The rest of a login is argon2
-- (CPU) and the refresh-token insert, so this ceiling is far above what a
-- login can reach; it is reported for information, not as a target.
-- Statement: crates/store/src/users.rs (find by email).
\set k random(0, :nusers - 1)
SELECT id, email, name, role, password_hash, created_at, updated_at
FROM users
WHERE lower(email) = lower('bench-' || :k::text || '@example.com');
