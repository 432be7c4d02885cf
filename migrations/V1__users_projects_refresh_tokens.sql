-- Users, their projects and their refresh tokens.
-- Runs as the database owner without superuser rights: only built-in
-- functions and the trusted plpgsql language.

CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    role          text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Emails are compared case-insensitively, whatever the code stores.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
-- The last-admin rule counts admins.
CREATE INDEX users_admins_idx ON users (id) WHERE role = 'admin';

CREATE TABLE projects (
    id          uuid        PRIMARY KEY,
    owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    description text        CHECK (char_length(description) <= 5000),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'archived', 'completed')),
    version     integer     NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One index per keyset order of the lists: a caller's own projects, and all
-- projects (admins), by creation time or by name, ties broken by id. The
-- owner indexes also serve the foreign key's cascade.
CREATE INDEX projects_owner_created_idx ON projects (owner_id, created_at, id);
CREATE INDEX projects_owner_name_idx    ON projects (owner_id, name, id);
CREATE INDEX projects_created_idx       ON projects (created_at, id);
CREATE INDEX projects_name_idx          ON projects (name, id);

CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id   uuid        NOT NULL,
    token_hash  bytea       NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX refresh_tokens_user_idx   ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);

-- created_at never changes; updated_at follows every update.
CREATE FUNCTION touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.created_at := OLD.created_at;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- A project's version is its ETag: every update bumps it, whatever the
-- statement said.
CREATE FUNCTION bump_project_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_touch_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TRIGGER projects_touch_updated_at
    BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

CREATE TRIGGER projects_bump_version
    BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION bump_project_version();
