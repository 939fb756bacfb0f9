-- binome.landing_live — internal, grain: day x site x landing-page LCP bucket.
--
-- rum.perf_vs_conversion's counts for sessions whose landing page view is
-- computed live (binome.live_page_views), per landing day, in the shape of the
-- rollup `binome maintain` fills from it (binome.landing_days). Only sessions
-- whose landing page view was measured at the marketing level and reported an
-- LCP; bounces are sessions of one page view.
DROP VIEW IF EXISTS binome.landing_live CASCADE;
CREATE VIEW binome.landing_live AS
SELECT
    day,
    site,
    least(floor(lcp / 500) * 500, 10000)::integer AS lcp_bucket_ms,
    count(*) AS sessions,
    count(*) FILTER (WHERE session_converted) AS conversions,
    count(*) FILTER (WHERE session_page_views = 1) AS bounces
FROM binome.live_page_views
WHERE is_landing AND consent = 'marketing' AND lcp IS NOT NULL
GROUP BY day, site, least(floor(lcp / 500) * 500, 10000)::integer;
