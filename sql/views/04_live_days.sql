-- binome.live_days() — internal, one row per site and day.
--
-- The site-days binome.live_page_views reads page views of: for each site,
-- the days after its rolled_through (today, and any day `binome maintain` has
-- not closed yet) that have no fresh snapshot (sql/functions/50_live_snapshots.sql), and the
-- rolled-up days marked dirty. A site-day read from its snapshot is not among
-- them, so its page views are not read at all; per site, so that a query for
-- one site (a snapshot, one site's scorecard) reads only that site's.
--
-- A function rather than a subquery for the planner's sake: it sees a few
-- site-days (ROWS 6), where a generate_series per site looks like a million
-- rows, and an estimate that far off switches on JIT compilation. SECURITY
-- DEFINER because the analyst role that reads the rum views cannot read the
-- bookkeeping tables. PARALLEL RESTRICTED (it runs in the leader; its SET
-- clause could not run in a worker): left PARALLEL UNSAFE, the default, it
-- would keep every query of the views from running in parallel. Dropped
-- first, with the views over it (which the files after this one create
-- again), so that its result type may change.
DROP FUNCTION IF EXISTS binome.live_days() CASCADE;
CREATE FUNCTION binome.live_days() RETURNS TABLE (site text, day date)
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
ROWS 6 AS $$
DECLARE
    first_day date;
    last_day date;
BEGIN
    SELECT min(p.day), max(p.day) INTO first_day, last_day FROM binome.page_views p;
    IF first_day IS NULL THEN
        RETURN;  -- no page views (and '-infinity' + 1 day would never end)
    END IF;
    RETURN QUERY
    SELECT s.site, g.day::date
    FROM binome.rollup_state s
    CROSS JOIN LATERAL generate_series(
        greatest(s.rolled_through + 1, first_day)::timestamp,
        greatest((now() AT TIME ZONE 'UTC')::date + 1, last_day)::timestamp,
        interval '1 day') AS g(day)
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.live_snapshots l
        WHERE l.site = s.site AND l.day = g.day::date AND l.valid_until > now())
    UNION
    SELECT d.site, d.day
    FROM binome.rollup_dirty d
    JOIN binome.rollup_state s ON s.site = d.site;
END
$$;
