-- rum.sessions — grain: one row per session (site, sid).
--
-- The landing page view is the session's first, ordered by t0 (the client's
-- clock, one clock within a session), then by when the collector received it
-- (CONTRACT section 6). The session's channel and campaign are its landing
-- page view's: '(no consent)' when the landing page view was measured at the
-- performance level, '(none)' when it was measured with consent but carried
-- none. A session converts when any of its page views has an event.
DROP VIEW IF EXISTS rum.sessions CASCADE;
CREATE VIEW rum.sessions AS
WITH ordered AS (
    SELECT
        p.*,
        row_number() OVER w AS position,
        count(*) OVER (PARTITION BY site, sid) AS page_views,
        bool_or(coalesce(converted, false)) OVER (PARTITION BY site, sid) AS session_converted,
        sum(revenue) OVER (PARTITION BY site, sid) AS session_revenue
    FROM rum.page_views_enriched p
    WINDOW w AS (PARTITION BY site, sid ORDER BY t0 NULLS LAST, received_at, pv)
)
SELECT
    site,
    sid,
    pv AS landing_pv,
    day,
    received_at,
    consent AS landing_consent,
    path AS landing_path,
    CASE WHEN consent = 'marketing' THEN coalesce(channel, '(none)') ELSE '(no consent)' END AS channel,
    CASE WHEN consent = 'marketing' THEN coalesce(utm_campaign, '(none)') ELSE '(no consent)' END AS utm_campaign,
    lcp AS landing_lcp,
    page_views,
    session_converted AS converted,
    session_revenue AS revenue
FROM ordered
WHERE position = 1;
