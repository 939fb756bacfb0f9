-- binome.worth_live — internal, grain: day x site x session channel x campaign.
--
-- rum.speed_worth's counts for sessions whose landing page view is computed
-- live (binome.live_page_views), per landing day, in the shape of the rollup
-- `binome maintain` fills from it (binome.worth_days,
-- sql/migrations/0009_worth_rollups.sql). Only sessions whose landing page view
-- was measured with marketing consent and reported an LCP; fast: that LCP at
-- most rum.good_threshold('lcp'), slow: over it. revenue: the converting
-- sessions' revenue (NULL when none carried any).
DROP VIEW IF EXISTS binome.worth_live CASCADE;
CREATE VIEW binome.worth_live AS
SELECT
    site,
    day,
    session_channel AS channel,
    session_campaign AS utm_campaign,
    count(*) AS sessions,
    count(*) FILTER (WHERE session_converted) AS conversions,
    sum(session_revenue) FILTER (WHERE session_converted) AS revenue,
    count(*) FILTER (WHERE lcp <= rum.good_threshold('lcp')) AS fast_sessions,
    count(*) FILTER (WHERE lcp <= rum.good_threshold('lcp') AND session_converted)
        AS fast_conversions,
    count(*) FILTER (WHERE lcp > rum.good_threshold('lcp')) AS slow_sessions,
    count(*) FILTER (WHERE lcp > rum.good_threshold('lcp') AND session_converted)
        AS slow_conversions
FROM binome.live_page_views
WHERE is_landing AND consent = 'marketing' AND lcp IS NOT NULL
GROUP BY site, day, session_channel, session_campaign;
