-- binome.live_page_views — internal, grain: one row per page view.
--
-- The page views (binome.page_view_facts) the grouped views compute live,
-- i.e. those of every (site, day) not read from a rollup: days after the
-- site's rolled_through (today, and any day `binome maintain` has not closed
-- yet) and rolled-up days marked dirty because a page view of theirs changed
-- since (a late beacon, a session that went on). A dirty day is always <= rolled_through, so no page
-- view is in both. The binome.*_live views aggregate this; `binome maintain`
-- fills the rollups (binome.*_days) from those same views, so a day reads the
-- same before and after its rollup.
DROP VIEW IF EXISTS binome.live_page_views CASCADE;
CREATE VIEW binome.live_page_views AS
SELECT f.*
FROM binome.page_view_facts f
JOIN binome.rollup_state s ON s.site = f.site
-- A lower bound for every site, as a value the executor knows before it
-- starts: it opens only the partitions after it (the planner cannot tell from
-- the join that the live part is a day or two). One scan, no UNION, so that
-- the sort of the grouped views runs in parallel workers.
WHERE f.day > (SELECT least(min(rolled_through), (SELECT min(day) - 1 FROM binome.rollup_dirty))
               FROM binome.rollup_state)
  AND (f.day > s.rolled_through OR (f.site, f.day) IN (SELECT site, day FROM binome.rollup_dirty));
