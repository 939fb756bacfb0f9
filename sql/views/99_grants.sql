-- Grants on views, given again after every migrate re-creates them (a dropped
-- view loses its grants). The roles come from sql/migrations/0001_baseline.sql
-- (or an administrator, where the migration role may not create roles).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT SELECT ON binome.beacon_columns TO binome_writer;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst') THEN
        GRANT USAGE ON SCHEMA rum, binome TO binome_analyst;
        GRANT SELECT ON ALL TABLES IN SCHEMA rum TO binome_analyst;
        GRANT EXECUTE ON FUNCTION rum.p75_from_histogram(float8, float8, bigint) TO binome_analyst;
        -- The live views read raw facts through it (SECURITY DEFINER, not PUBLIC's).
        GRANT EXECUTE ON FUNCTION binome.page_view_facts_of(text, date) TO binome_analyst;
    END IF;
END
$$;
