-- Snapshots of busy live days: a day not yet closed is computed from its page
-- views on every query, and exact p75s over a busy day cannot be read faster
-- without reading fewer rows. So every BINOME_LIVE_SNAPSHOT_SECONDS `binome
-- maintain` rolls up each live day with at least
-- BINOME_LIVE_SNAPSHOT_PAGE_VIEWS page views (binome.write_rollup, as for a
-- closed day) and records it in binome.live_snapshots; the views read it while
-- it is fresh and compute the day live again after valid_until, never stale.

-- Snapshot one live day of one site, fresh for p_valid_for. Returns its page
-- views, or NULL when the day is closed (rolled_through or before: closed days
-- are rolled up by rollup_day, not snapshotted).
CREATE OR REPLACE FUNCTION binome.snapshot_live_day(p_site text, p_day date, p_valid_for interval)
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
CREATE OR REPLACE FUNCTION binome.refresh_live_snapshots(p_min_page_views bigint, p_valid_for interval)
RETURNS TABLE (site text, day date, page_views bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
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
