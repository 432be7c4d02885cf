-- POST /api/v1/auth/login, database part only: the user's credentials by
-- e-mail address (the unique index on lower(email)), then the new session
-- and its first refresh token in one transaction, as the server does.
-- The rest of a login is argon2 (CPU), so this ceiling is far above what a
-- login can reach; it is reported for information, not as a target.
-- Statements: crates/store/src/users.rs, FIND_CREDENTIALS_BY_EMAIL, and
-- crates/store/src/sessions.rs, INSERT_SESSION and INSERT_TOKEN, verbatim
-- but for the parameters (random uuids stand in for the server's UUID v7s,
-- and random bytes for the SHA-256 of the token). Keep them equal.
\set k random(0, :nusers - 1)
SELECT id, email, name, role, email_verified, created_at, updated_at, password_hash FROM users
WHERE lower(email) = lower('bench-' || :k::text || '@example.com');
BEGIN;
INSERT INTO sessions (id, user_id, expires_at, idle_expires_at, user_agent, ip)
VALUES (gen_random_uuid(), bench_user_id(:k), now() + make_interval(secs => 7776000),
        least(now() + make_interval(secs => 7776000), now() + make_interval(secs => 2592000)),
        'wrk', '127.0.0.1')
RETURNING id AS session_id, idle_expires_at \gset
INSERT INTO refresh_tokens (id, session_id, token_hash, expires_at)
VALUES (gen_random_uuid(), :session_id, sha256(uuid_send(gen_random_uuid())), :idle_expires_at);
COMMIT;
