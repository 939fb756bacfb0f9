-- rum.metric_coverage — grain: day x site x browser x device_class.
--
-- Which share of page views produced each metric (issue 22), so that nobody
-- over-reads a p75: Safari and Firefox report no CLS, Safari no INP before
-- Event Timing, a page view hidden before its first paint has no LCP, a route
-- of a single-page application has no TTFB (js-snippet/README.md,
-- "Single-page applications"). A page view "with" a metric has a final value
-- for it (rum.page_views_enriched).
DROP VIEW IF EXISTS rum.metric_coverage CASCADE;
CREATE VIEW rum.metric_coverage AS
SELECT
    day,
    site,
    browser,
    device_class,
    count(*) AS page_views,
    count(lcp) AS with_lcp,
    count(inp) AS with_inp,
    count(cls) AS with_cls,
    count(fcp) AS with_fcp,
    count(ttfb) AS with_ttfb
FROM binome.page_views
GROUP BY day, site, browser, device_class;
