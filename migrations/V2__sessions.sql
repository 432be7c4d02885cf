-- Sessions: what one login (or registration, or password reset) starts. A
-- session owns a chain of refresh tokens; its row is the one lock that
-- rotation and every kind of ending take first, so that an ending that has
-- answered leaves no working token behind, not even one whose rotation was
-- in flight.
--
-- Until now a refresh-token "family" was an implicit session: each family
-- becomes a session row with the same id, and the tokens point at it.

CREATE TABLE sessions (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz NOT NULL DEFAULT now(),
    -- The absolute limit (SESSION_MAX_AGE_DAYS from the start), whatever
    -- the refreshes.
    expires_at      timestamptz NOT NULL,
    -- When the session dies unless refreshed before: the earlier of the
    -- absolute limit and the last use plus REFRESH_TOKEN_TTL_DAYS.
    idle_expires_at timestamptz NOT NULL CHECK (idle_expires_at <= expires_at),
    user_agent      text        CHECK (char_length(user_agent) <= 256),
    ip              inet,
    ended_at        timestamptz,
    end_reason      text        CHECK (end_reason IN (
                        'logout', 'revoked', 'reuse', 'password_change',
                        'password_reset', 'user_deleted')),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);

-- A user's live sessions, newest first (the list and "end all but one").
CREATE INDEX sessions_user_live_idx ON sessions (user_id, id) WHERE ended_at IS NULL;
-- The cleanup's two kinds of dead rows.
CREATE INDEX sessions_ended_idx ON sessions (ended_at) WHERE ended_at IS NOT NULL;
CREATE INDEX sessions_idle_expiry_idx ON sessions (idle_expires_at) WHERE ended_at IS NULL;

-- Every family becomes a session; a family whose tokens are all revoked
-- is an ended one (its end reason unknown: "revoked").
INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, idle_expires_at,
                      ended_at, end_reason)
SELECT family_id,
       min(user_id::text)::uuid,
       min(created_at),
       max(created_at),
       greatest(min(created_at) + interval '90 days', max(expires_at)),
       max(expires_at),
       CASE WHEN bool_and(revoked_at IS NOT NULL) THEN max(revoked_at) END,
       CASE WHEN bool_and(revoked_at IS NOT NULL) THEN 'revoked' END
FROM refresh_tokens
GROUP BY family_id;

ALTER TABLE refresh_tokens RENAME COLUMN family_id TO session_id;
ALTER TABLE refresh_tokens
    ADD CONSTRAINT refresh_tokens_session_fkey
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE;
-- A token's user is its session's; whether it works is its session's state.
ALTER TABLE refresh_tokens DROP COLUMN user_id;
ALTER TABLE refresh_tokens DROP COLUMN revoked_at;
ALTER INDEX refresh_tokens_family_idx RENAME TO refresh_tokens_session_idx;

-- The ended-sessions feed: every instance polls it to learn which sessions
-- ended elsewhere, so that their access tokens stop working everywhere. No
-- foreign key on purpose: a deleted user's sessions are gone, but the
-- feed must go on saying that they ended until their last access token
-- has expired (the cleanup removes older rows).
--
-- `xid` is the ending transaction's id. A poll reads the rows with `xid`
-- at or above the oldest transaction still running at its previous poll
-- (`pg_snapshot_xmin`), so a transaction that commits late is never
-- skipped, whatever the clocks say.
CREATE TABLE session_endings (
    session_id uuid        PRIMARY KEY,
    ended_at   timestamptz NOT NULL DEFAULT now(),
    xid        bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint)
);

CREATE INDEX session_endings_xid_idx ON session_endings (xid);
CREATE INDEX session_endings_ended_idx ON session_endings (ended_at);

