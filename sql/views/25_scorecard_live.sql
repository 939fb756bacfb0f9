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
--                 threshold / over its "poor" one (LCP 2500/4000 ms, INP
--                 200/500 ms, CLS 0.1/0.25, FCP 1800/3000 ms, TTFB 800/1800 ms:
--                 https://web.dev/articles/vitals, web.dev/articles/ttfb).
--   cwv_samples / cwv_good  page views with LCP and CLS / those whose LCP, CLS
--                 and (where measured) INP are all good.
-- The bins view counts page views per histogram bin (binome.metric_bin).
DROP VIEW IF EXISTS binome.scorecard_live CASCADE;
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
    count(*) FILTER (WHERE lcp <= 2500) AS lcp_good,
    count(*) FILTER (WHERE lcp > 4000) AS lcp_poor,
    count(inp) AS inp_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY inp) AS inp_p75,
    count(*) FILTER (WHERE inp <= 200) AS inp_good,
    count(*) FILTER (WHERE inp > 500) AS inp_poor,
    count(cls) AS cls_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY cls) AS cls_p75,
    count(*) FILTER (WHERE cls <= 0.1) AS cls_good,
    count(*) FILTER (WHERE cls > 0.25) AS cls_poor,
    count(fcp) AS fcp_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY fcp) AS fcp_p75,
    count(*) FILTER (WHERE fcp <= 1800) AS fcp_good,
    count(*) FILTER (WHERE fcp > 3000) AS fcp_poor,
    count(ttfb) AS ttfb_samples,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY ttfb) AS ttfb_p75,
    count(*) FILTER (WHERE ttfb <= 800) AS ttfb_good,
    count(*) FILTER (WHERE ttfb > 1800) AS ttfb_poor,
    count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL) AS cwv_samples,
    count(*) FILTER (WHERE lcp <= 2500 AND cls <= 0.1 AND (inp IS NULL OR inp <= 200)) AS cwv_good
FROM binome.live_page_views
GROUP BY day, site, group_channel, group_campaign,
         coalesce(device_class, '(none)'), coalesce(country, '(none)');

-- One branch per metric: a query for one metric reads only its branch.
CREATE VIEW binome.scorecard_bins_live AS
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class, coalesce(country, '(none)') AS country,
       'lcp'::text AS metric, binome.metric_bin('lcp', lcp) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE lcp IS NOT NULL
GROUP BY day, site, group_channel, group_campaign, coalesce(device_class, '(none)'),
         coalesce(country, '(none)'), binome.metric_bin('lcp', lcp)
UNION ALL
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class, coalesce(country, '(none)') AS country,
       'inp'::text AS metric, binome.metric_bin('inp', inp) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE inp IS NOT NULL
GROUP BY day, site, group_channel, group_campaign, coalesce(device_class, '(none)'),
         coalesce(country, '(none)'), binome.metric_bin('inp', inp)
UNION ALL
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class, coalesce(country, '(none)') AS country,
       'cls'::text AS metric, binome.metric_bin('cls', cls) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE cls IS NOT NULL
GROUP BY day, site, group_channel, group_campaign, coalesce(device_class, '(none)'),
         coalesce(country, '(none)'), binome.metric_bin('cls', cls)
UNION ALL
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class, coalesce(country, '(none)') AS country,
       'fcp'::text AS metric, binome.metric_bin('fcp', fcp) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE fcp IS NOT NULL
GROUP BY day, site, group_channel, group_campaign, coalesce(device_class, '(none)'),
         coalesce(country, '(none)'), binome.metric_bin('fcp', fcp)
UNION ALL
SELECT day, site, group_channel AS channel, group_campaign AS utm_campaign,
       coalesce(device_class, '(none)') AS device_class, coalesce(country, '(none)') AS country,
       'ttfb'::text AS metric, binome.metric_bin('ttfb', ttfb) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE ttfb IS NOT NULL
GROUP BY day, site, group_channel, group_campaign, coalesce(device_class, '(none)'),
         coalesce(country, '(none)'), binome.metric_bin('ttfb', ttfb);
