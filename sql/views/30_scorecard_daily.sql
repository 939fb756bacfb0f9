-- rum.scorecard_daily — grain: day x site x channel x utm_campaign x device_class x country.
--
-- The shared indicators, defined as CrUX defines them
-- (https://developer.chrome.com/docs/crux/methodology/metrics):
--   *_p75          percentile_cont(0.75) over the page views that have the metric.
--   *_good_pct     % (0-100) of the page views with the metric that are good:
--                  at or under rum.good_threshold(metric) (sql/views/01_indicators.sql).
--   *_poor_pct     % of them that are poor: over rum.poor_threshold(metric).
--   cwv_good_pct   % of the page views with LCP and CLS whose LCP, CLS and, where
--                  measured, INP are all good.
--   sessions       distinct sessions with a page view in the group.
--   conversion_rate  % of those sessions that converted (any page view of the
--                  session has an event); conversions: how many; revenue: the
--                  events' values of the group's page views.
--   *_samples      page views with the metric (the p75's sample size).
--   too_small      rum.too_small(page_views): too few page views to read.
--   *_good, *_poor, cwv_good  the counts behind the percentages: page views
--                  with a good / poor value of the metric, with a good
--                  experience. With *_samples, cwv_samples and conversions,
--                  what adds up across groups.
-- channel / utm_campaign are the session's landing page view's (rum.sessions).
-- A page view measured at the performance level counts under '(no consent)',
-- where conversion_rate and revenue are NULL: performance is known for every
-- visitor, marketing figures only for those who consented. Absent dimensions
-- are '(none)'. Days are UTC.
--
-- Closed days come from their rollup (binome.scorecard_days, filled by
-- `binome maintain` from binome.scorecard_live), the others are computed live
-- (sql/views/05_live_page_views.sql): the same figures either way. To add
-- groups up (a month, all devices), sum the counts, never the percentages, and
-- read p75s from rum.scorecard_histograms.
DROP VIEW IF EXISTS rum.scorecard_daily CASCADE;
CREATE VIEW rum.scorecard_daily AS
SELECT
    day,
    site,
    channel,
    utm_campaign,
    device_class,
    country,
    page_views,
    sessions,
    lcp_p75,
    inp_p75,
    cls_p75,
    fcp_p75,
    ttfb_p75,
    100.0 * lcp_good / nullif(lcp_samples, 0) AS lcp_good_pct,
    100.0 * inp_good / nullif(inp_samples, 0) AS inp_good_pct,
    100.0 * cls_good / nullif(cls_samples, 0) AS cls_good_pct,
    100.0 * cwv_good / nullif(cwv_samples, 0) AS cwv_good_pct,
    100.0 * conversions / sessions AS conversion_rate,
    revenue,
    100.0 * fcp_good / nullif(fcp_samples, 0) AS fcp_good_pct,
    100.0 * ttfb_good / nullif(ttfb_samples, 0) AS ttfb_good_pct,
    lcp_samples,
    inp_samples,
    cls_samples,
    rum.too_small(page_views) AS too_small,
    fcp_samples,
    ttfb_samples,
    cwv_samples,
    conversions,
    100.0 * lcp_poor / nullif(lcp_samples, 0) AS lcp_poor_pct,
    100.0 * inp_poor / nullif(inp_samples, 0) AS inp_poor_pct,
    100.0 * cls_poor / nullif(cls_samples, 0) AS cls_poor_pct,
    lcp_good, lcp_poor, inp_good, inp_poor, cls_good, cls_poor,
    fcp_good, fcp_poor, ttfb_good, ttfb_poor, cwv_good
FROM (
    SELECT r.*
    FROM binome.scorecard_days r
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
    UNION ALL
    SELECT * FROM binome.scorecard_live
) AS groups;
