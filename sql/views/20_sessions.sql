-- rum.sessions — grain: one row per session (site, sid).
--
-- The landing page view is the session's first, ordered by t0 (the client's
-- clock, one clock within a session), then by when the collector received it,
-- then by pv (docs/beacon-format.md, "Definitions"). The session's channel and campaign are its
-- landing page view's: '(no consent)' when the landing page view was measured
-- at the performance level, '(none)' when it was measured with consent but
-- carried none. A session converts when any of its page views has an event;
-- revenue is the sum of its page views' revenue. day is the landing page
-- view's. Computed when a page view of the session is stored
-- (binome.refold_page_views) and kept on every page view of the session
-- (binome.page_view_facts).
DROP VIEW IF EXISTS rum.sessions CASCADE;
CREATE VIEW rum.sessions AS
SELECT
    site,
    sid,
    pv AS landing_pv,
    day,
    date_trunc('minute', received_at) AS received_at,
    consent AS landing_consent,
    path AS landing_path,
    session_channel AS channel,
    session_campaign AS utm_campaign,
    lcp AS landing_lcp,
    session_page_views::bigint AS page_views,
    session_converted AS converted,
    session_revenue AS revenue
FROM binome.page_view_facts
WHERE is_landing;
