-- 0003: two least-privileged roles, without passwords (README "Roles").
--
--   binome_writer   what the collector does and nothing else: read the sites,
--                   insert beacons (and read the four key columns it checks
--                   resends against), add to the ingest counters, keep dead
--                   letters, create partitions and run `binome maintain`
--                   through definer's functions.
--   binome_analyst  reads the views of schema rum; grants on them are given
--                   again each time migrate re-creates them (sql/views/99_grants.sql).
--
-- Roles belong to the whole cluster, not to one database: create them only if
-- absent, and let a concurrent migration of another database win the race. A
-- migration role without CREATEROLE (some managed services) gets a warning,
-- not a failed migration: an administrator creates the two roles and runs
-- `binome migrate` again, which gives the grants with the views.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['binome_writer', 'binome_analyst'] LOOP
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

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT USAGE ON SCHEMA binome TO binome_writer;
        -- `binome serve` checks that no migration is pending before it starts.
        GRANT SELECT ON binome.schema_migrations TO binome_writer;
        GRANT SELECT ON binome.sites, binome.site_origins TO binome_writer;
        -- collector/writer.py: a temporary table shaped LIKE binome.beacon_columns
        -- (a view without rows, granted in sql/views/99_grants.sql), then INSERT
        -- ... SELECT from it, skipping resends it finds by (site, day, pv, seq),
        -- RETURNING site.
        GRANT INSERT ON binome.beacons TO binome_writer;
        GRANT SELECT (site, day, pv, seq) ON binome.beacons TO binome_writer;
        GRANT INSERT ON binome.dead_letters TO binome_writer;
        GRANT SELECT, INSERT, UPDATE ON binome.ingest_counts TO binome_writer;
        GRANT EXECUTE ON FUNCTION binome.ensure_beacon_partition(date), binome.close_days(date),
            binome.rollup_day(text, date), binome.apply_retention(date)
            TO binome_writer;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst') THEN
        GRANT USAGE ON SCHEMA rum TO binome_analyst;
        -- The planner inlines the histogram helpers the views call (binome.metric_bin
        -- ...), looking their names up as the querying role: it needs to see
        -- schema binome's names. No table of it is granted, and its functions
        -- that write are revoked from PUBLIC (0002).
        GRANT USAGE ON SCHEMA binome TO binome_analyst;
    END IF;
END
$$;
