-- binome.live_page_views — internal, grain: one row per page view.
--
-- The page views the grouped views compute live, i.e. those of every
-- (site, day) not read from a rollup: days after the site's rolled_through
-- (today, and any day `binome maintain` has not closed yet) and rolled-up days
-- marked dirty because a page view of theirs changed since (a late beacon, a
-- session that went on). The two parts never overlap: a dirty day is always
-- <= rolled_through. The binome.*_live views aggregate this; `binome maintain`
-- fills the rollups (binome.*_days) from those same views, so a day reads the
-- same before and after its rollup.
DROP VIEW IF EXISTS binome.live_page_views CASCADE;
CREATE VIEW binome.live_page_views AS
SELECT p.*
FROM binome.rollup_state s
JOIN binome.page_views p ON p.site = s.site AND p.day > s.rolled_through
UNION ALL
SELECT p.*
FROM binome.rollup_dirty d
JOIN binome.page_views p ON p.site = d.site AND p.day = d.day;
