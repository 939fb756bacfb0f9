-- Grants on views, given again after every migrate re-creates them (a dropped
-- view loses its grants). The roles come from sql/migrations/0001_baseline.sql
-- and sql/migrations/0003_maintainer.sql (or an administrator, where the
-- migration role may not create roles).
DO $$
DECLARE
    -- The views with one row per page view or session.
    row_level text[] := ARRAY['page_views_enriched', 'sessions'];
    view_name text;
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT SELECT ON binome.beacon_columns TO binome_writer;
        -- `binome serve`'s maintenance checks the objectives (collector/objectives.py)
        -- as binome_writer or binome_maintainer: their figures, no row of a page view.
        GRANT USAGE ON SCHEMA rum TO binome_writer;
        GRANT SELECT ON rum.objectives, rum.objective_weeks TO binome_writer;
        -- and `binome objective list` reads what the check stored, as the same role.
        GRANT SELECT ON rum.objective_results TO binome_writer;
    END IF;
    -- binome_analyst reads aggregates (docs/privacy.md): every view of rum but
    -- those with one row per page view or session, which are
    -- binome_analyst_rows' (a member of binome_analyst; issue 20).
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst') THEN
        GRANT USAGE ON SCHEMA rum, binome TO binome_analyst;
        FOR view_name IN
            SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'rum' AND c.relkind IN ('v', 'm', 'r')
              AND c.relname <> ALL (row_level)
        LOOP
            EXECUTE format('GRANT SELECT ON rum.%I TO binome_analyst', view_name);
        END LOOP;
        GRANT EXECUTE ON FUNCTION rum.p75_from_histogram(float8, float8, bigint) TO binome_analyst;
        -- rum.comparisons' intervals, for analysts' own comparisons (docs/analyst-guide.md).
        GRANT EXECUTE ON FUNCTION rum.z95(), rum.design_effect(bigint, bigint),
            rum.p75_ranks(bigint, float8), rum.p75_from_ranks(bigint, float8, float8),
            rum.p75_interval(float8[], float8), rum.p75_difference_interval(float8[], float8[]),
            rum.wilson_interval(bigint, bigint, float8),
            rum.newcombe_interval(bigint, bigint, bigint, bigint, float8, float8),
            rum.verdict(bigint, bigint, float8, float8, boolean),
            rum.objective_status(bigint, float8, float8, float8, boolean) TO binome_analyst;
        -- The live views read raw facts through it (SECURITY DEFINER, not PUBLIC's):
        -- PostgreSQL checks it as the querying role; it refuses a direct call.
        GRANT EXECUTE ON FUNCTION binome.page_view_facts_of(text, date, uuid) TO binome_analyst;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst_rows') THEN
        FOREACH view_name IN ARRAY row_level LOOP
            -- (A view kept by CREATE OR REPLACE keeps an earlier grant to the analyst.)
            EXECUTE format('REVOKE SELECT ON rum.%I FROM binome_analyst', view_name);
            EXECUTE format('GRANT SELECT ON rum.%I TO binome_analyst_rows', view_name);
        END LOOP;
    END IF;
END
$$;
