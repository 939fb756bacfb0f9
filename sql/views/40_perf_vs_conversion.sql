-- rum.perf_vs_conversion — grain: site x landing-page LCP bucket.
--
-- What speed costs: sessions grouped by their landing page view's LCP in
-- 500 ms buckets; lcp_bucket_ms is the bucket's lower bound, the last bucket
-- (10000) holds every landing LCP of 10 s and more. Only sessions whose landing
-- page view was measured at the marketing level count (conversions are only
-- known with consent), and only those whose landing page reported an LCP.
--   conversion_rate  % of the bucket's sessions that converted.
--   bounce_rate      % of the bucket's sessions of a single page view.
--   bounces          the bucket's sessions of a single page view.
--   too_small        rum.too_small(sessions): too few sessions to read.
-- Counts per landing day come from rollups for closed days
-- (binome.landing_days) and live for the others (binome.landing_live).
DROP VIEW IF EXISTS rum.perf_vs_conversion CASCADE;
CREATE VIEW rum.perf_vs_conversion AS
SELECT
    site,
    lcp_bucket_ms,
    sum(sessions)::bigint AS sessions,
    sum(conversions)::bigint AS conversions,
    100.0 * sum(conversions)::bigint / sum(sessions)::bigint AS conversion_rate,
    100.0 * sum(bounces)::bigint / sum(sessions)::bigint AS bounce_rate,
    rum.too_small(sum(sessions)::bigint) AS too_small,
    sum(bounces)::bigint AS bounces
FROM (
    SELECT r.*
    FROM binome.landing_days r
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
    UNION ALL
    SELECT * FROM binome.landing_live
) AS days
GROUP BY site, lcp_bucket_ms;
