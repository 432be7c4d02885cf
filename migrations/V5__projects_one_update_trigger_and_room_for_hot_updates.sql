-- Cheaper writes to projects, with the same rules (measured in
-- bench/results/db-writes-2026-11-30.md):
--
-- 1. One BEFORE UPDATE trigger instead of two. Each row trigger is a
--    PL/pgSQL call with its own set-up of NEW and OLD; one function now does
--    what touch_updated_at and bump_project_version did, in the same order
--    of effect: the version is OLD's plus one, created_at stays OLD's,
--    updated_at is the transaction's now(), whatever the statement said.
--    (users and jobs keep touch_updated_at.)
--
-- 2. Room on every page for new row versions (fillfactor 90, from 100). A
--    PATCH changes no indexed column (name aside), so the new version can
--    stay on the same page as a heap-only tuple: no entry in any of the five
--    indexes, a fraction of the WAL and of the pages dirtied. With full
--    pages every update moved the row to another page and inserted into
--    all five indexes. Applies to pages written from now on; existing ones
--    gain room as updates and VACUUM free it.

CREATE FUNCTION projects_before_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    NEW.created_at := OLD.created_at;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

DROP TRIGGER projects_touch_updated_at ON projects;
DROP TRIGGER projects_bump_version ON projects;
DROP FUNCTION bump_project_version();

CREATE TRIGGER projects_before_update
    BEFORE UPDATE ON projects
    FOR EACH ROW EXECUTE FUNCTION projects_before_update();

ALTER TABLE projects SET (fillfactor = 90);
