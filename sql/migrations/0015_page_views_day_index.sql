-- 0015: a query for a few days of rum.page_views_enriched reads those days.
--
-- Why: the index on (day, site) was there for it, but PostgreSQL discounts the
-- physical order of a multi-column index's first column (btcostestimate takes
-- 0.75 of its correlation), so it costed an index scan of one day as if the
-- day's rows were spread over the whole table and read the whole table
-- instead, history included. On bench/views.py's database (10 million page
-- views, rows in day order: correlation 0.99999), counting one closed day's
-- 310,382 page views took 580 ms, today's million 519 ms, both full scans;
-- with this single-column index the same plans are index scans: 36 ms and
-- 143-160 ms. A site filter is checked on the rows of the days read.
--
-- Built before the old one is dropped, so the table only refuses writes (the
-- folder waits; the collector queues) while it is built, and reads only for
-- the drop: 3.5 s at 10 million page views.
CREATE INDEX page_views_day_only ON binome.page_views (day);
DROP INDEX binome.page_views_day;
ALTER INDEX binome.page_views_day_only RENAME TO page_views_day;
