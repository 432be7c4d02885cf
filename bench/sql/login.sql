-- POST /api/v1/auth/login, database part only: the user's credentials by
-- e-mail address (the unique index on lower(email)), then the new refresh
-- token of the session (two round trips, no transaction, as the server).
-- The rest of a login is argon2 (CPU), so this ceiling is far above what a
-- login can reach; it is reported for information, not as a target.
-- Statements: crates/store/src/users.rs, FIND_CREDENTIALS_BY_EMAIL, and
-- crates/store/src/refresh_tokens.rs, INSERT, verbatim but for the
-- parameters (a random uuid stands in for the server's UUID v7s, and
-- random bytes for the SHA-256 of the token). Keep them equal.
\set k random(0, :nusers - 1)
SELECT id, email, name, role, created_at, updated_at, password_hash FROM users
WHERE lower(email) = lower('bench-' || :k::text || '@example.com');
INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at)
VALUES (gen_random_uuid(), bench_user_id(:k), gen_random_uuid(),
        sha256(uuid_send(gen_random_uuid())), now() + interval '30 days');
