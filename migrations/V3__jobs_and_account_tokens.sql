-- Background jobs (a transactional outbox), single-use account tokens, the
-- per-address mail counter, and whether a user's address is verified.
-- Everything here is pooler-safe: claims are row locks and leases, never
-- session state.

ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- A job is queued in the same transaction as the change that causes it, so
-- a rolled-back change queues nothing. Workers claim due jobs with
-- FOR UPDATE SKIP LOCKED and hold them under a lease (`locked_until`); a
-- worker that dies leaves a lease that expires, and another worker takes
-- the job again. `lease_id` names one claim, so that a worker whose lease
-- expired cannot complete or fail the job someone else holds now.
CREATE TABLE jobs (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 100),
    payload      jsonb       NOT NULL,
    state        text        NOT NULL DEFAULT 'queued'
                             CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts     integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts integer     NOT NULL CHECK (max_attempts BETWEEN 1 AND 100),
    run_at       timestamptz NOT NULL DEFAULT now(),
    lease_id     uuid,
    locked_until timestamptz,
    last_error   text        CHECK (char_length(last_error) <= 2000),
    -- Periodic jobs carry `kind:period-number`: one row per period, whoever
    -- schedules it first.
    dedupe_key   text        UNIQUE CHECK (char_length(dedupe_key) <= 200),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK ((state = 'running') = (lease_id IS NOT NULL AND locked_until IS NOT NULL))
);

-- The claim reads due queued jobs in run_at order and expired leases; the
-- metrics count by state; the cleanup finds old finished jobs.
CREATE INDEX jobs_due_idx      ON jobs (run_at)       WHERE state = 'queued';
CREATE INDEX jobs_lease_idx    ON jobs (locked_until) WHERE state = 'running';
CREATE INDEX jobs_dead_idx     ON jobs (updated_at)   WHERE state = 'dead';
CREATE INDEX jobs_finished_idx ON jobs (finished_at)  WHERE state = 'done';

CREATE TRIGGER jobs_touch_updated_at
    BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- Password-reset, email-verification and email-change tokens: only their
-- SHA-256 hashes, single use (`used_at`), with an expiry.
CREATE TABLE account_tokens (
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text        NOT NULL
                           CHECK (purpose IN ('password_reset', 'email_verification', 'email_change')),
    -- The address an email change moves to; only for that purpose.
    new_email  text        CHECK (char_length(new_email) BETWEEN 3 AND 254),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((purpose = 'email_change') = (new_email IS NOT NULL))
);

CREATE INDEX account_tokens_user_idx    ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires_idx ON account_tokens (expires_at);

-- One row per message sent to an address (its SHA-256, never the address),
-- for the per-address limits; the cleanup deletes rows older than a day.
CREATE TABLE mail_sends (
    address_hash bytea       NOT NULL CHECK (length(address_hash) = 32),
    sent_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX mail_sends_address_idx ON mail_sends (address_hash, sent_at);
CREATE INDEX mail_sends_sent_idx    ON mail_sends (sent_at);
