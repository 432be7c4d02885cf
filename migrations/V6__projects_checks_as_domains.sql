-- The rules on a project's columns as domains instead of table CHECK
-- constraints: the same rules, under the same constraint names (an error
-- still names `projects_status_check` and so on, SQLSTATE 23514), enforced
-- on every value that enters the column, by any statement.
--
-- Why: PostgreSQL rebuilds a table's CHECK expressions from their stored
-- text at the start of every INSERT and UPDATE (ExecRelCheck: stringToNode
-- and expression planning, about 21,000 instructions per constraint); a
-- domain's checks are built once per connection (the type cache). With four
-- checks that was a third of the executor's work per write
-- (bench/results/db-writes-2026-11-30.md).
--
-- One difference, for direct SQL only: a value that breaks a rule is
-- refused when it is assigned, before the BEFORE UPDATE trigger runs. So
-- `UPDATE projects SET version = 0` is now refused (23514) where the trigger
-- used to replace the 0 with the bumped version; any valid version sent is
-- still replaced, and the version still grows by one on every update.
--
-- Changing the column types rewrites the table and its indexes once (an
-- ACCESS EXCLUSIVE lock for the duration).

CREATE DOMAIN project_name AS text
    CONSTRAINT projects_name_check CHECK (char_length(VALUE) BETWEEN 1 AND 200);
CREATE DOMAIN project_description AS text
    CONSTRAINT projects_description_check CHECK (char_length(VALUE) <= 5000);
CREATE DOMAIN project_status AS text
    CONSTRAINT projects_status_check CHECK (VALUE IN ('active', 'archived', 'completed'));
CREATE DOMAIN project_version AS integer
    CONSTRAINT projects_version_check CHECK (VALUE >= 1);

ALTER TABLE projects
    DROP CONSTRAINT projects_name_check,
    DROP CONSTRAINT projects_description_check,
    DROP CONSTRAINT projects_status_check,
    DROP CONSTRAINT projects_version_check,
    ALTER COLUMN name TYPE project_name,
    ALTER COLUMN description TYPE project_description,
    ALTER COLUMN status TYPE project_status,
    ALTER COLUMN version TYPE project_version;
