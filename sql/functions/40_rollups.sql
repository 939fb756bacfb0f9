-- Rollups of closed days (`binome maintain`): one row per group and day in
-- binome.*_days, filled from the same views that compute live days
-- (binome.*_live in sql/views/), so a rolled-up day reads exactly as it did
-- live. Days up to a site's rolled_through are read from rollups unless dirty
-- (a page view of theirs changed since), and computed live otherwise, so a
-- view's answer never depends on whether a rollup has run.

-- Close every day up to p_through: mark those with page views dirty (the views
-- keep computing them live) and move rolled_through. Under the fold lock, so
-- no fold in flight misses the move. Returns every day awaiting a rollup.
-- jit off here and in write_rollup whoever calls them: a rollup runs the live
-- views for one day, whose plans span every partition.
CREATE OR REPLACE FUNCTION binome.close_days(p_through date) RETURNS TABLE (site text, day date)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(7020508655466053939);  -- 'binome.fold'
    INSERT INTO binome.rollup_dirty AS r (site, day)
    SELECT s.site, d.day::date
    FROM binome.rollup_state s
    CROSS JOIN LATERAL (
        SELECT min(p.day) AS first_day FROM binome.page_views p
        WHERE p.site = s.site AND p.day > s.rolled_through AND p.day <= p_through
    ) AS f
    CROSS JOIN LATERAL generate_series(f.first_day, p_through, interval '1 day') AS d(day)
    WHERE s.rolled_through < p_through
      AND EXISTS (SELECT 1 FROM binome.page_views p WHERE p.site = s.site AND p.day = d.day::date)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    UPDATE binome.rollup_state AS s SET rolled_through = p_through
    WHERE s.rolled_through < p_through;
    RETURN QUERY SELECT r.site, r.day FROM binome.rollup_dirty r ORDER BY r.day, r.site;
END
$fn$;

-- The rollup rows of one site and day, from the live views: shared by closed
-- days (rollup_day) and snapshots of live ones (50_live_snapshots.sql).
-- enable_sort off: the planner expects few rows from
-- binome.page_view_facts_of (its ROWS) and sorted a busy day's millions by
-- group where hashing does; what must sort (percentile_cont, array_agg ...
-- ORDER BY) still does.
CREATE OR REPLACE FUNCTION binome.write_rollup(p_site text, p_day date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
SET enable_sort = off AS $fn$
DECLARE
    written bigint;
BEGIN
    DELETE FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.scorecard_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.campaign_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.landing_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.comparison_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.comparison_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.worth_days WHERE site = p_site AND day = p_day;

    INSERT INTO binome.scorecard_days
    SELECT * FROM binome.scorecard_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.scorecard_day_bins
    SELECT day, site, channel, utm_campaign, device_class, country, metric,
           array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.scorecard_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, channel, utm_campaign, device_class, country, metric;
    INSERT INTO binome.campaign_day_bins
    SELECT * FROM binome.campaign_bins_of(p_site, p_day);
    INSERT INTO binome.release_days
    SELECT * FROM binome.release_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.release_day_bins
    SELECT day, site, release, metric, array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.release_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, release, metric;
    INSERT INTO binome.landing_days
    SELECT * FROM binome.landing_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.comparison_days
    SELECT * FROM binome.comparison_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.comparison_day_bins
    SELECT site, day, kind, side, metric, array_agg(bin ORDER BY bin),
           array_agg(page_views ORDER BY bin)
    FROM binome.comparison_bins_live WHERE site = p_site AND day = p_day
    GROUP BY site, day, kind, side, metric;
    INSERT INTO binome.worth_days (site, day, channel, utm_campaign, sessions, conversions,
                                   revenue, fast_sessions, fast_conversions, slow_sessions,
                                   slow_conversions)
    SELECT site, day, channel, utm_campaign, sessions, conversions, revenue, fast_sessions,
           fast_conversions, slow_sessions, slow_conversions
    FROM binome.worth_live WHERE site = p_site AND day = p_day;

    SELECT coalesce(sum(page_views), 0) INTO written
    FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    RETURN written;
END
$fn$;

-- Roll up one dirty day of one site (a snapshot of the day, taken while it was
-- live, is replaced and forgotten). Returns false when the day changed
-- meanwhile (it stays dirty, for the next run).
CREATE OR REPLACE FUNCTION binome.rollup_day(p_site text, p_day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    seen bigint;
BEGIN
    SELECT version INTO seen FROM binome.rollup_dirty WHERE site = p_site AND day = p_day;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    DELETE FROM binome.live_snapshots WHERE site = p_site AND day = p_day;
    PERFORM binome.write_rollup(p_site, p_day);
    DELETE FROM binome.rollup_dirty WHERE site = p_site AND day = p_day AND version = seen;
    RETURN FOUND;
END
$fn$;

-- One site-day's campaign histograms (binome.campaign_day_bins), summed from
-- its scorecard_day_bins.
CREATE OR REPLACE FUNCTION binome.campaign_bins_of(p_site text, p_day date)
RETURNS SETOF binome.campaign_day_bins
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT day, site, channel, utm_campaign, metric,
           array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM (SELECT r.day, r.site, r.channel, r.utm_campaign, r.metric, u.bin,
                 sum(u.page_views)::bigint AS page_views
          FROM binome.scorecard_day_bins r
          CROSS JOIN LATERAL unnest(r.bins, r.counts) AS u(bin, page_views)
          WHERE r.site = p_site AND r.day = p_day
          GROUP BY r.day, r.site, r.channel, r.utm_campaign, r.metric, u.bin) AS summed
    GROUP BY day, site, channel, utm_campaign, metric
$fn$;
