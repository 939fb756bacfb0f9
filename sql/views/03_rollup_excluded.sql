-- binome.rollup_excluded — internal, grain: site x day.
--
-- The days whose rollup rows (binome.*_days, *_day_bins) the views must not
-- read: closed days marked dirty (a page view changed since the rollup) and
-- live days whose snapshot is no longer fresh (sql/functions/50_live_snapshots.sql). Those
-- days are computed live instead (binome.live_page_views): a day is read
-- from exactly one of the two.
DROP VIEW IF EXISTS binome.rollup_excluded CASCADE;
CREATE VIEW binome.rollup_excluded AS
SELECT site, day FROM binome.rollup_dirty
UNION ALL
SELECT l.site, l.day
FROM binome.live_snapshots l
JOIN binome.rollup_state s ON s.site = l.site
WHERE l.day > s.rolled_through AND l.valid_until <= now();
