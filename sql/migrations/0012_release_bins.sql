-- 0012: a release's fine histogram summed once over its closed days, not at
-- every read of rum.release_comparison.
--
-- Why: the view found each release's p75 bin by summing the fine bins of
-- every rolled-up day of every release (binome.release_day_bins): 295,538
-- unnested rows for 30 days at 10 million page views (bench/views.py), about
-- 300 ms of the view's 0.5-0.7 s, and growing with history: 25 months of
-- retention would have read 25 times more. binome.release_bins holds each
-- release's bins summed over its closed days (up to its site's
-- rolled_through). The view reads it, takes away the closed days it must not
-- read from rollups (dirty days, computed live), adds the rows of the live
-- days read from their snapshot and the bins of the days computed live: its
-- cost depends on the number of releases, not on how long they lasted or how
-- much history is kept.
--
-- Kept in step by triggers: a statement that inserts or deletes rows of
-- closed days in release_day_bins (a rollup, retention), or that moves a
-- site's rolled_through (binome.close_days), sums the releases it touched
-- again from their closed days' rows (a release lasts days: a few thousand
-- bins). Snapshots write days after rolled_through only, so their REPEATABLE
-- READ transaction (binome.refresh_live_snapshots) never writes here and
-- cannot conflict with a rollup running beside it. Nothing updates
-- release_day_bins in place; an UPDATE would leave release_bins behind, so
-- none is allowed.
CREATE TABLE binome.release_bins (
    site    text COLLATE "C" NOT NULL,
    release text COLLATE "C" NOT NULL,
    metric  text COLLATE "C" NOT NULL,
    bins    smallint[] NOT NULL,
    counts  bigint[] NOT NULL,
    PRIMARY KEY (site, release, metric)
);

-- Sum these releases again from their closed days' rows.
CREATE FUNCTION binome.resum_release_bins(p_sites text[], p_releases text[]) RETURNS void
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

-- resum_release_bins takes each (site, release) once, and nothing when given
-- no rows (NULL arrays): the triggers pass it what they touched as it comes.
CREATE FUNCTION binome.release_day_bins_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'binome.release_day_bins is only inserted into and deleted from'
            USING HINT = 'delete the rows and insert them again: binome.release_bins follows'
                         ' inserts and deletes (sql/migrations/0012)';
    END IF;
    PERFORM binome.resum_release_bins(array_agg(c.site), array_agg(c.release))
    FROM changed_bins c
    JOIN binome.rollup_state s ON s.site = c.site AND c.day <= s.rolled_through;
    RETURN NULL;
END
$fn$;

CREATE FUNCTION binome.rolled_through_moved() RETURNS trigger
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

CREATE TRIGGER resum_inserted AFTER INSERT ON binome.release_day_bins
    REFERENCING NEW TABLE AS changed_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE TRIGGER resum_deleted AFTER DELETE ON binome.release_day_bins
    REFERENCING OLD TABLE AS changed_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE TRIGGER no_update BEFORE UPDATE ON binome.release_day_bins
    FOR EACH STATEMENT EXECUTE FUNCTION binome.release_day_bins_changed();
CREATE TRIGGER resum_moved AFTER UPDATE ON binome.rollup_state
    REFERENCING OLD TABLE AS old_state NEW TABLE AS new_state
    FOR EACH STATEMENT EXECUTE FUNCTION binome.rolled_through_moved();

REVOKE EXECUTE ON FUNCTION binome.resum_release_bins(text[], text[]),
    binome.release_day_bins_changed(), binome.rolled_through_moved() FROM PUBLIC;

-- The releases rolled up before this migration.
SELECT binome.resum_release_bins(array_agg(site), array_agg(release))
FROM binome.release_day_bins;
