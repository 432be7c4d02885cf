-- Idempotent retries of creates (Idempotency-Key): one row per user and key,
-- shared by every instance. While the first request runs, status is NULL
-- (in flight); then it holds the response to replay for 24 hours.
CREATE TABLE idempotency_keys (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 of the request (method, route and the validated body).
    request_hash bytea NOT NULL CHECK (length(request_hash) = 32),
    -- Which request holds the claim: a request that outlived its lease and
    -- lost the key to a retry can neither complete nor release the retry's.
    claim uuid NOT NULL,
    status smallint CHECK (status BETWEEN 100 AND 599),
    header_names text[] NOT NULL DEFAULT '{}',
    header_values text[] NOT NULL DEFAULT '{}',
    body bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

-- The cleanup deletes the oldest first, in bounded batches.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
