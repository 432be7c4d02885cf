-- POST /api/v1/projects: INSERT … RETURNING. The server generates a UUID v7
-- in Rust; here a random UUID gets the current millisecond timestamp in its
-- first 48 bits, so that new ids land at the right end of the primary-key
-- index as the server's do.
-- Statement: crates/store/src/projects.rs, INSERT ("projects.insert"),
-- verbatim but for the parameters ($5: the default status, `active`, which
-- the server sends when the body has none). Keep it equal to the constant.
\set k random(0, :nusers - 1)
INSERT INTO projects (id, owner_id, name, description, status)
VALUES (encode(overlay(uuid_send(gen_random_uuid())
                       PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                       FROM 1 FOR 6), 'hex')::uuid,
        bench_user_id(:k), 'Bench project'::text, 'Created by the create scenario of the bench.'::text, 'active'::text)
RETURNING version, created_at, updated_at;
