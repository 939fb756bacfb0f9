-- binome.live_page_views — internal, grain: one row per page view.
--
-- The page views (binome.page_view_facts) the grouped views compute live,
-- i.e. those of every (site, day) not read from a rollup: days after the
-- site's rolled_through (today, and any day `binome maintain` has not closed
-- yet) and rolled-up days marked dirty because a page view of theirs changed since (a late beacon, a
-- session that went on). The two parts never overlap: a dirty day is always
-- <= rolled_through. The binome.*_live views aggregate this; `binome maintain`
-- fills the rollups (binome.*_days) from those same views, so a day reads the
-- same before and after its rollup.
DROP VIEW IF EXISTS binome.live_page_views CASCADE;
CREATE VIEW binome.live_page_views AS
SELECT f.*
FROM binome.rollup_state s
JOIN binome.page_view_facts f ON f.site = s.site AND f.day > s.rolled_through
-- The same bound for all sites, as a value the executor knows before it starts:
-- it then opens only the partitions after it (the planner cannot tell from
-- the join alone that the live part is a day or two).
WHERE f.day > (SELECT min(rolled_through) FROM binome.rollup_state)
UNION ALL
SELECT f.*
FROM binome.rollup_dirty d
JOIN binome.page_view_facts f ON f.site = d.site AND f.day = d.day;
