-- 0006: snapshots of busy live days.
--
-- Why: a day not yet rolled up is computed from its page views on every query
-- (binome.live_page_views). At a million page views a day, exact p75s per
-- scorecard group cost 1.5 s a query, and nothing exact can be read faster
-- without reading fewer rows. So a busy live day is rolled up too, the same
-- way as a closed day (binome.write_rollup), every BINOME_LIVE_SNAPSHOT_SECONDS,
-- into the same rollup tables, and the views read that snapshot while it is
-- fresh: exact figures, at most a snapshot interval old. A quiet day (fewer
-- than BINOME_LIVE_SNAPSHOT_PAGE_VIEWS page views, all sites together) stays
-- computed live, to the last beacon. A snapshot that is not refreshed in time
-- (the collector stopped, maintenance is late) is ignored: the day is computed
-- live again, never read stale beyond valid_until.
--
-- Rollup rows of a live day exist only with a snapshot row: both are written
-- in one transaction (binome.snapshot_live_day), and closing the day replaces
-- them (binome.rollup_day). The views read rollup rows unless their day is
-- dirty or has a snapshot that is no longer fresh (sql/views/03_rollup_excluded.sql),
-- and compute live every day after rolled_through without a fresh snapshot
-- (sql/views/05_live_page_views.sql): for each site and day, exactly one of the two.
CREATE TABLE binome.live_snapshots (
    site        text COLLATE "C" NOT NULL,
    day         date NOT NULL,
    taken_at    timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    page_views  bigint NOT NULL,
    PRIMARY KEY (site, day)
);

-- The rollup rows of one site and day, from the live views: what
-- binome.rollup_day did before, shared with snapshots.
CREATE FUNCTION binome.write_rollup(p_site text, p_day date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    written bigint;
BEGIN
    DELETE FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.scorecard_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.landing_days WHERE site = p_site AND day = p_day;

    INSERT INTO binome.scorecard_days
    SELECT * FROM binome.scorecard_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.scorecard_day_bins
    SELECT day, site, channel, utm_campaign, device_class, country, metric,
           array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.scorecard_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, channel, utm_campaign, device_class, country, metric;
    INSERT INTO binome.release_days
    SELECT * FROM binome.release_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.release_day_bins
    SELECT day, site, release, metric, array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.release_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, release, metric;
    INSERT INTO binome.landing_days
    SELECT * FROM binome.landing_live WHERE site = p_site AND day = p_day;

    SELECT coalesce(sum(page_views), 0) INTO written
    FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    RETURN written;
END
$fn$;

-- Roll up one dirty day of one site (0002's, now through write_rollup; a
-- snapshot of the day, taken while it was live, is replaced and forgotten).
-- Returns false when the day changed meanwhile (it stays dirty, for the next run).
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

-- Snapshot one live day of one site, fresh for p_valid_for. Returns its page
-- views, or NULL when the day is closed (rolled_through or before: closed days
-- are rolled up by rollup_day, not snapshotted).
CREATE FUNCTION binome.snapshot_live_day(p_site text, p_day date, p_valid_for interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    closed_through date;
    written bigint;
BEGIN
    -- A share lock on the site's state: binome.close_days cannot close the day
    -- while its snapshot is being written.
    SELECT rolled_through INTO closed_through
    FROM binome.rollup_state WHERE site = p_site FOR SHARE;
    IF NOT FOUND OR p_day <= closed_through THEN
        RETURN NULL;
    END IF;
    -- Without its snapshot row, the day reads live: write_rollup reads it from there.
    DELETE FROM binome.live_snapshots WHERE site = p_site AND day = p_day;
    written := binome.write_rollup(p_site, p_day);
    INSERT INTO binome.live_snapshots (site, day, taken_at, valid_until, page_views)
    VALUES (p_site, p_day, clock_timestamp(), clock_timestamp() + p_valid_for, written);
    RETURN written;
END
$fn$;

-- Snapshot every site of each live day with at least p_min_page_views page
-- views (all sites together: then no query reads that day's partition live),
-- fresh for p_valid_for; forget the snapshots of days closed since (their
-- rollup replaced them). Returns what it snapshotted. `binome maintain` calls
-- it in a REPEATABLE READ transaction.
CREATE FUNCTION binome.refresh_live_snapshots(p_min_page_views bigint, p_valid_for interval)
RETURNS TABLE (site text, day date, page_views bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    DELETE FROM binome.live_snapshots l
    USING binome.rollup_state s
    WHERE s.site = l.site AND l.day <= s.rolled_through;

    RETURN QUERY
    WITH live AS (
        SELECT p.site, p.day, count(*) AS page_views
        FROM binome.page_views p
        JOIN binome.rollup_state s ON s.site = p.site
        WHERE p.day > (SELECT min(rolled_through) FROM binome.rollup_state)
          AND p.day > s.rolled_through
        GROUP BY p.site, p.day
    ), busy AS (
        SELECT live.day FROM live GROUP BY live.day HAVING sum(live.page_views) >= p_min_page_views
    )
    SELECT live.site, live.day, binome.snapshot_live_day(live.site, live.day, p_valid_for)
    FROM live JOIN busy ON busy.day = live.day
    ORDER BY live.day, live.site;
END
$fn$;

REVOKE EXECUTE ON FUNCTION binome.write_rollup(text, date),
    binome.snapshot_live_day(text, date, interval),
    binome.refresh_live_snapshots(bigint, interval)
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT EXECUTE ON FUNCTION binome.refresh_live_snapshots(bigint, interval)
            TO binome_writer;
    END IF;
END
$$;
