-- How long refused-beacon counts are kept (issue 24): 7 days, enough to see
-- a set-up problem of last week, while a flood of refusals cannot pile up.
-- SECURITY DEFINER so that `binome maintain` runs it as binome_writer, which
-- may not delete from the table (sql/migrations/0007_ingest_rejections.sql).
CREATE OR REPLACE FUNCTION binome.forget_ingest_rejections() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    WITH gone AS (
        DELETE FROM binome.ingest_rejections WHERE minute < now() - interval '7 days'
        RETURNING 1)
    SELECT count(*) FROM gone
$fn$;
