-- rum.perf_vs_conversion — grain: site x landing-page LCP bucket.
--
-- What speed costs: sessions grouped by their landing page view's LCP in
-- 500 ms buckets; lcp_bucket_ms is the bucket's lower bound, the last bucket
-- (10000) holds every landing LCP of 10 s and more. Only sessions whose landing
-- page view was measured at the marketing level count (conversions are only
-- known with consent), and only those whose landing page reported an LCP.
--   conversion_rate  % of the bucket's sessions that converted.
--   bounce_rate      % of the bucket's sessions of a single page view.
--   too_small        under 50 sessions, too few to read.
DROP VIEW IF EXISTS rum.perf_vs_conversion CASCADE;
CREATE VIEW rum.perf_vs_conversion AS
SELECT
    site,
    least(floor(landing_lcp / 500) * 500, 10000)::integer AS lcp_bucket_ms,
    count(*) AS sessions,
    count(*) FILTER (WHERE converted) AS conversions,
    100.0 * count(*) FILTER (WHERE converted) / count(*) AS conversion_rate,
    100.0 * count(*) FILTER (WHERE page_views = 1) / count(*) AS bounce_rate,
    count(*) < 50 AS too_small
FROM rum.sessions
WHERE landing_consent = 'marketing' AND landing_lcp IS NOT NULL
GROUP BY site, least(floor(landing_lcp / 500) * 500, 10000)::integer;
