-- binome.scorecard_live, binome.scorecard_bins_live — internal, grain:
-- day x site x channel x utm_campaign x device_class x country (x metric x bin).
--
-- rum.scorecard_daily's groups for the page views computed live
-- (binome.live_page_views), in the shape of the rollup tables that
-- `binome maintain` fills from them (binome.scorecard_days, *_day_bins):
-- counts rather than percentages, so groups add up.
--   channel / utm_campaign  the session's landing page view's, or '(no consent)'
--                 for a page view measured at the performance level.
--   sessions      distinct sessions with a page view in the group (each
--                 session's first page view in the group counts it).
--   conversions   those of them that converted; NULL under '(no consent)'.
--   *_p75         percentile_cont(0.75) over the page views with the metric.
--   *_good/_poor  page views with the metric at or under CrUX's "good"
--                 threshold / over its "poor" one (rum.good_threshold,
--                 rum.poor_threshold: sql/views/01_indicators.sql).
--   cwv_samples / cwv_good  page views with LCP and CLS / those whose LCP, CLS
--                 and (where measured) INP are all good (rum.cwv_good).
-- The bins view counts page views per histogram bin (binome.metric_bin).
DROP VIEW IF EXISTS binome.scorecard_live CASCADE;
DROP VIEW IF EXISTS binome.live_grouped_page_views CASCADE;
CREATE VIEW binome.scorecard_live AS
SELECT
    day,
    site,
    group_channel AS channel,
    group_campaign AS utm_campaign,
    coalesce(device_class, '(none)') AS device_class,
    coalesce(country, '(none)') AS country,
    count(*) AS page_views,
    count(*) FILTER (WHERE first_in_group) AS sessions,
    CASE WHEN group_channel <> '(no consent)' THEN
        count(*) FILTER (WHERE first_in_group AND session_converted)
    END AS conversions,
    CASE WHEN group_channel <> '(no consent)' THEN sum(revenue) END AS revenue,
    count(lcp) AS lcp_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp) AS lcp_p75,
    count(*) FILTER (WHERE lcp <= rum.good_threshold('lcp')) AS lcp_good,
    count(*) FILTER (WHERE lcp > rum.poor_threshold('lcp')) AS lcp_poor,
    count(inp) AS inp_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY inp) AS inp_p75,
    count(*) FILTER (WHERE inp <= rum.good_threshold('inp')) AS inp_good,
    count(*) FILTER (WHERE inp > rum.poor_threshold('inp')) AS inp_poor,
    count(cls) AS cls_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY cls) AS cls_p75,
    count(*) FILTER (WHERE cls <= rum.good_threshold('cls')) AS cls_good,
    count(*) FILTER (WHERE cls > rum.poor_threshold('cls')) AS cls_poor,
    count(fcp) AS fcp_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY fcp) AS fcp_p75,
    count(*) FILTER (WHERE fcp <= rum.good_threshold('fcp')) AS fcp_good,
    count(*) FILTER (WHERE fcp > rum.poor_threshold('fcp')) AS fcp_poor,
    count(ttfb) AS ttfb_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY ttfb) AS ttfb_p75,
    count(*) FILTER (WHERE ttfb <= rum.good_threshold('ttfb')) AS ttfb_good,
    count(*) FILTER (WHERE ttfb > rum.poor_threshold('ttfb')) AS ttfb_poor,
    count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL) AS cwv_samples,
    count(*) FILTER (WHERE rum.cwv_good(lcp, inp, cls)) AS cwv_good
FROM binome.live_page_views
GROUP BY day, site, group_channel, group_campaign,
         coalesce(device_class, '(none)'), coalesce(country, '(none)');

-- The live page views with the columns of their scorecard group: a view, not
-- a CTE, so that the branches below, and the views over them, are flattened
-- into one Append as if each read binome.live_page_views itself.
CREATE VIEW binome.live_grouped_page_views AS
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class,
       coalesce(country, '(none)') AS country, lcp, inp, cls, fcp, ttfb
FROM binome.live_page_views;

-- One branch per metric: a query for one metric reads only its branch.
CREATE VIEW binome.scorecard_bins_live AS
SELECT day, site, channel, utm_campaign, device_class, country, 'lcp'::text AS metric,
       binome.metric_bin('lcp', lcp) AS bin, count(*) AS page_views
FROM binome.live_grouped_page_views WHERE lcp IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, site, channel, utm_campaign, device_class, country, 'inp'::text AS metric,
       binome.metric_bin('inp', inp) AS bin, count(*) AS page_views
FROM binome.live_grouped_page_views WHERE inp IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, site, channel, utm_campaign, device_class, country, 'cls'::text AS metric,
       binome.metric_bin('cls', cls) AS bin, count(*) AS page_views
FROM binome.live_grouped_page_views WHERE cls IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, site, channel, utm_campaign, device_class, country, 'fcp'::text AS metric,
       binome.metric_bin('fcp', fcp) AS bin, count(*) AS page_views
FROM binome.live_grouped_page_views WHERE fcp IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8
UNION ALL
SELECT day, site, channel, utm_campaign, device_class, country, 'ttfb'::text AS metric,
       binome.metric_bin('ttfb', ttfb) AS bin, count(*) AS page_views
FROM binome.live_grouped_page_views WHERE ttfb IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 8;
