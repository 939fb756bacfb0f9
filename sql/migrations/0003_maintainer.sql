-- Least privilege (issue 20): retention is no longer the collector's to run, and
-- analysts read aggregates unless given the row-level role.
--
--   binome_maintainer    what `binome maintain` does: what binome_writer may
--                        (partitions, folds, rollups, snapshots) plus
--                        binome.apply_retention, whose cutoff is clamped to
--                        binome.retention_policy (sql/functions/10_partitions.sql).
--   binome_analyst_rows  binome_analyst plus the views with one row per page view
--                        or session (sql/views/99_grants.sql, docs/privacy.md).
--
-- Created as 0001_baseline.sql creates the first two roles: only if absent, and a
-- migration role without CREATEROLE gets a warning, not a failed migration.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['binome_maintainer', 'binome_analyst_rows'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL;
                WHEN insufficient_privilege THEN
                    RAISE WARNING 'cannot create role %: %', role_name, SQLERRM;
            END;
        END IF;
    END LOOP;
    -- Membership, not copies of grants: each keeps what its base role gets at
    -- every migrate (sql/functions/99_grants.sql, sql/views/99_grants.sql).
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_maintainer')
       AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT binome_writer TO binome_maintainer;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst_rows')
       AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst') THEN
        GRANT binome_analyst TO binome_analyst_rows;
    END IF;
END
$$;

-- The retention period, one row, written by the schema's owner at every
-- `binome migrate` from BINOME_RETENTION_MONTHS (collector/cli.py). No other
-- role may write it: it bounds what binome.apply_retention may drop.
-- One row (the unique index on a constant): a setting, not keyed by site, so
-- neither a key (tests/test_db.py: every key starts with site).
CREATE TABLE binome.retention_policy (
    months integer NOT NULL CHECK (months >= 1)
);
CREATE UNIQUE INDEX retention_policy_one_row ON binome.retention_policy ((true));
INSERT INTO binome.retention_policy (months) VALUES (25);

-- The capability binome.live_page_views passes to binome.page_view_facts_of
-- (sql/views/05_live_page_views.sql). PostgreSQL checks EXECUTE on a function a
-- view calls as the querying role, so binome_analyst, which reads the grouped
-- live views, must hold EXECUTE on that function; the function refuses a
-- caller without this key, which only the views' owner can read: a direct call
-- (one row per page view) is refused to the analyst.
CREATE TABLE binome.live_facts_key (
    key uuid NOT NULL DEFAULT gen_random_uuid()
);
CREATE UNIQUE INDEX live_facts_key_one_row ON binome.live_facts_key ((true));
INSERT INTO binome.live_facts_key DEFAULT VALUES;
