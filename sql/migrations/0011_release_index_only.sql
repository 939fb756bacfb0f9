-- 0011: rum.release_comparison reads its exact p75s from index-only scans.
--
-- Why: a release's p75 is percentile_cont's, to the last bit: the summed fine
-- histogram says which bin holds the values at the p75's ranks, and an index
-- of binome.page_views on (site, coalesce(release, '(none)'), metric) reads
-- them inside that bin (sql/views/50_release_comparison.sql). The index holds
-- coalesce(release, '(none)'), not release itself, so PostgreSQL could not
-- answer from the index alone (it needs every column the query names) and
-- fetched each skipped row from the table: 90 lookups of 500 to 1,300 rows,
-- about 570 ms of the view's 1.85 s at 10 million page views (bench/views.py,
-- 2026-12-03, a slow day for the development machine). With release included
-- they are index-only scans (the rows of closed days are all-visible once
-- vacuumed): 53 ms for the same lookups. The indexes grow by the release
-- text; what the fold costs did not move (bench/fold.py, arrival order,
-- 100,000 beacons: 80.3 µs of PostgreSQL per beacon with 0011, 81.0 without).
DROP INDEX binome.page_views_release_lcp, binome.page_views_release_inp,
    binome.page_views_release_cls;
CREATE INDEX page_views_release_lcp ON binome.page_views (site, (coalesce(release, '(none)')), lcp)
    INCLUDE (release) WHERE lcp IS NOT NULL;
CREATE INDEX page_views_release_inp ON binome.page_views (site, (coalesce(release, '(none)')), inp)
    INCLUDE (release) WHERE inp IS NOT NULL;
CREATE INDEX page_views_release_cls ON binome.page_views (site, (coalesce(release, '(none)')), cls)
    INCLUDE (release) WHERE cls IS NOT NULL;
