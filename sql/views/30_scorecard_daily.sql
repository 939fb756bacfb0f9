-- rum.scorecard_daily — grain: day x site x channel x utm_campaign x device_class x country.
--
-- The shared indicators, defined as CrUX defines them
-- (https://developer.chrome.com/docs/crux/methodology/metrics):
--   *_p75          percentile_cont(0.75) over the page views that have the metric.
--   *_good_pct     % (0-100) of the page views with the metric that are good:
--                  LCP <= 2500 ms, INP <= 200 ms, CLS <= 0.1 (web.dev/articles/vitals).
--   cwv_good_pct   % of the page views with LCP and CLS whose LCP, CLS and, where
--                  measured, INP are all good.
--   sessions       distinct sessions with a page view in the group.
--   conversion_rate  % of those sessions that converted (any page view of the
--                  session has an event); revenue: the events' values of the
--                  group's page views.
-- channel / utm_campaign are the session's landing page view's (rum.sessions).
-- A page view measured at the performance level counts under '(no consent)',
-- where conversion_rate and revenue are NULL: performance is known for every
-- visitor, marketing figures only for those who consented. Absent dimensions
-- are '(none)'. too_small: under 50 page views, too few to read (as GA4 does).
DROP VIEW IF EXISTS rum.scorecard_daily CASCADE;
CREATE VIEW rum.scorecard_daily AS
WITH grouped AS (
    SELECT
        p.*,
        CASE WHEN p.consent = 'marketing' THEN s.channel ELSE '(no consent)' END AS group_channel,
        CASE WHEN p.consent = 'marketing' THEN s.utm_campaign ELSE '(no consent)' END AS group_campaign,
        s.converted AS session_converted
    FROM rum.page_views_enriched p
    JOIN rum.sessions s USING (site, sid)
)
SELECT
    day,
    site,
    group_channel AS channel,
    group_campaign AS utm_campaign,
    coalesce(device_class, '(none)') AS device_class,
    coalesce(country, '(none)') AS country,
    count(*) AS page_views,
    count(DISTINCT sid) AS sessions,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY lcp) AS lcp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY inp) AS inp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY cls) AS cls_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY fcp) AS fcp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY ttfb) AS ttfb_p75,
    100.0 * count(*) FILTER (WHERE lcp <= 2500) / nullif(count(lcp), 0) AS lcp_good_pct,
    100.0 * count(*) FILTER (WHERE inp <= 200) / nullif(count(inp), 0) AS inp_good_pct,
    100.0 * count(*) FILTER (WHERE cls <= 0.1) / nullif(count(cls), 0) AS cls_good_pct,
    100.0 * count(*) FILTER (WHERE lcp <= 2500 AND cls <= 0.1 AND (inp IS NULL OR inp <= 200))
        / nullif(count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL), 0) AS cwv_good_pct,
    CASE WHEN group_channel <> '(no consent)' THEN
        100.0 * count(DISTINCT sid) FILTER (WHERE session_converted) / count(DISTINCT sid)
    END AS conversion_rate,
    CASE WHEN group_channel <> '(no consent)' THEN sum(revenue) END AS revenue,
    100.0 * count(*) FILTER (WHERE fcp <= 1800) / nullif(count(fcp), 0) AS fcp_good_pct,
    100.0 * count(*) FILTER (WHERE ttfb <= 800) / nullif(count(ttfb), 0) AS ttfb_good_pct,
    count(lcp) AS lcp_samples,
    count(inp) AS inp_samples,
    count(cls) AS cls_samples,
    count(*) < 50 AS too_small
FROM grouped
GROUP BY day, site, group_channel, group_campaign,
         coalesce(device_class, '(none)'), coalesce(country, '(none)');
