-- 0013: each rolled-up site-day's totals in one row.
--
-- Why: the dashboard shows the share of page views measured with marketing
-- consent over every day of a site (beside "what speed costs" and the
-- releases, which span all time). It summed every rum.scorecard_daily group
-- of every day: 3,162 groups a day for the busiest site of bench/views.py,
-- 0.16 s for 30 days and 25 times that for 25 months of retention.
-- binome.site_days holds one row per rolled-up site-day (closed days and
-- snapshots alike: the rows of binome.scorecard_days summed), read through
-- rum.site_daily, so the share costs a row per day.
--
-- Kept in step by triggers on binome.scorecard_days: every statement that
-- inserts or deletes its rows (a rollup, a snapshot, retention) sums the
-- site-days it touched again. Each site-day is written by one transaction at
-- a time (a snapshot writes live days, a rollup closed ones), so the sums
-- need no lock of their own. Nothing updates scorecard_days in place; an
-- UPDATE would leave site_days behind, so none is allowed.
CREATE TABLE binome.site_days (
    site                 text COLLATE "C" NOT NULL,
    day                  date NOT NULL,
    page_views           bigint NOT NULL,
    marketing_page_views bigint NOT NULL,  -- outside the '(no consent)' groups
    PRIMARY KEY (site, day)
);

CREATE FUNCTION binome.scorecard_days_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'binome.scorecard_days is only inserted into and deleted from'
            USING HINT = 'delete the rows and insert them again: binome.site_days follows'
                         ' inserts and deletes (sql/migrations/0013)';
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

CREATE TRIGGER site_days_inserted AFTER INSERT ON binome.scorecard_days
    REFERENCING NEW TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();
CREATE TRIGGER site_days_deleted AFTER DELETE ON binome.scorecard_days
    REFERENCING OLD TABLE AS changed_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();
CREATE TRIGGER no_update BEFORE UPDATE ON binome.scorecard_days
    FOR EACH STATEMENT EXECUTE FUNCTION binome.scorecard_days_changed();

REVOKE EXECUTE ON FUNCTION binome.scorecard_days_changed() FROM PUBLIC;

-- The site-days rolled up before this migration.
INSERT INTO binome.site_days (site, day, page_views, marketing_page_views)
SELECT site, day, sum(page_views),
       coalesce(sum(page_views) FILTER (WHERE channel <> '(no consent)'), 0)
FROM binome.scorecard_days
GROUP BY site, day;
