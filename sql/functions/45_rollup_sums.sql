-- Sums over rollups, kept in step by statement triggers so that readers cost a
-- row per release or per day, not per group of history: binome.release_bins
-- (a release's fine histogram over its closed days, read by
-- rum.release_comparison) and binome.site_days (a site-day's totals, read by
-- rum.site_daily). Nothing updates the summed tables in place (an UPDATE would
-- leave the sums behind), so none is allowed: rows are deleted and inserted.

-- Sum these releases again from their closed days' rows. Snapshots write days
-- after rolled_through only, so their REPEATABLE READ transaction
-- (binome.refresh_live_snapshots) never writes release_bins and cannot conflict
-- with a rollup running beside it.
CREATE OR REPLACE FUNCTION binome.resum_release_bins(p_sites text[], p_releases text[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    touched record;
BEGIN
    -- Two maintenance runs (two collectors) could touch one release at once:
    -- each sums it after the other's rows are committed, under a lock per
    -- release taken in one order.
    FOR touched IN
        SELECT DISTINCT t.site, t.release FROM unnest(p_sites, p_releases) AS t(site, release)
        ORDER BY t.site, t.release
    LOOP
        PERFORM pg_advisory_xact_lock(
            hashtextextended('binome.release_bins' || chr(31) || touched.site || chr(31)
                             || touched.release, 0));
        DELETE FROM binome.release_bins
        WHERE site = touched.site AND release = touched.release;
        INSERT INTO binome.release_bins (site, release, metric, bins, counts)
        SELECT site, release, metric, array_agg(bin ORDER BY bin), array_agg(n ORDER BY bin)
        FROM (
            SELECT r.site, r.release, r.metric, u.bin, sum(u.n)::bigint AS n
            FROM binome.release_day_bins r
            JOIN binome.rollup_state s ON s.site = r.site AND r.day <= s.rolled_through
            CROSS JOIN LATERAL unnest(r.bins, r.counts) AS u(bin, n)
            WHERE r.site = touched.site AND r.release = touched.release
            GROUP BY r.site, r.release, r.metric, u.bin
        ) AS summed
        GROUP BY site, release, metric;
    END LOOP;
END
$fn$;

-- A statement that inserts or deletes rows of closed days in release_day_bins
-- (a rollup, retention) sums the releases it touched again. resum_release_bins
-- takes each (site, release) once, and nothing when given no rows (NULL arrays).
CREATE OR REPLACE FUNCTION binome.release_day_bins_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'binome.release_day_bins is only inserted into and deleted from'
            USING HINT = 'delete the rows and insert them again: binome.release_bins follows'
                         ' inserts and deletes (sql/functions/45_rollup_sums.sql)';
    END IF;
    PERFORM binome.resum_release_bins(array_agg(c.site), array_agg(c.release))
    FROM changed_bins c
    JOIN binome.rollup_state s ON s.site = c.site AND c.day <= s.rolled_through;
    RETURN NULL;
END
$fn$;

-- A statement that moves a site's rolled_through (binome.close_days): the days
-- between the old and the new value change sides.
CREATE OR REPLACE FUNCTION binome.rolled_through_moved() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    -- The days between the old and the new rolled_through change sides.
    PERFORM binome.resum_release_bins(array_agg(r.site), array_agg(r.release))
    FROM binome.release_day_bins r
    JOIN old_state o ON o.site = r.site
    JOIN new_state n ON n.site = r.site
    WHERE r.day > least(o.rolled_through, n.rolled_through)
      AND r.day <= greatest(o.rolled_through, n.rolled_through);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER resum_inserted AFTER INSERT ON binome.release_day_bins
    REFERENCING NEW TABLE AS changed_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE OR REPLACE TRIGGER resum_deleted AFTER DELETE ON binome.release_day_bins
    REFERENCING OLD TABLE AS changed_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE OR REPLACE TRIGGER no_update BEFORE UPDATE ON binome.release_day_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE OR REPLACE TRIGGER resum_moved AFTER UPDATE ON binome.rollup_state
    REFERENCING OLD TABLE AS old_state NEW TABLE AS new_state
    FOR EACH STATEMENT EXECUTE FUNCTION binome.rolled_through_moved();

-- Every statement that inserts or deletes scorecard_days rows (a rollup, a
-- snapshot, retention) sums the site-days it touched again. Each site-day is
-- written by one transaction at a time (a snapshot writes live days, a rollup
-- closed ones), so the sums need no lock of their own.
CREATE OR REPLACE FUNCTION binome.scorecard_days_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'binome.scorecard_days is only inserted into and deleted from'
            USING HINT = 'delete the rows and insert them again: binome.site_days follows'
                         ' inserts and deletes (sql/functions/45_rollup_sums.sql)';
    END IF;
    DELETE FROM binome.site_days d
    USING (SELECT DISTINCT site, day FROM changed_days) AS c
    WHERE d.site = c.site AND d.day = c.day;
    INSERT INTO binome.site_days (site, day, page_views, marketing_page_views)
    SELECT r.site, r.day, sum(r.page_views),
           coalesce(sum(r.page_views) FILTER (WHERE r.channel <> '(no consent)'), 0)
    FROM binome.scorecard_days r
    JOIN (SELECT DISTINCT site, day FROM changed_days) AS c ON c.site = r.site AND c.day = r.day
    GROUP BY r.site, r.day;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE TRIGGER site_days_inserted AFTER INSERT ON binome.scorecard_days
    REFERENCING NEW TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();
CREATE OR REPLACE TRIGGER site_days_deleted AFTER DELETE ON binome.scorecard_days
    REFERENCING OLD TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();
CREATE OR REPLACE TRIGGER no_update BEFORE UPDATE ON binome.scorecard_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();
