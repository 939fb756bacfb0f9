-- The views as first written: straightforward and correct by definition, over
-- raw beacons (no rollups, no write-time fold). tests/test_rollups.py checks
-- that the rum views answer exactly what these answer, whatever rolled up.
-- page_views_enriched and sessions are materialized (refreshed before each
-- comparison) only because the planner joins the plain views very slowly.
DROP SCHEMA IF EXISTS reference CASCADE;
CREATE SCHEMA reference;

-- reference.page_views_enriched — grain: one row per page view (site, pv).
--
-- A page view sends several beacons (seq 0, 1, 2 ...). They are folded here:
--   * each metric's final value is the one of the highest seq that reported it,
--     whatever order the beacons arrived in (docs/beacon-format.md, "The beacon");
--   * consent is that of the highest seq: the visitor's latest decision. The
--     marketing columns (channel, utm_*, dims other than page_type, converted,
--     revenue) are NULL unless that decision is 'marketing';
--   * path, utm_* and channel come from the lowest seq that carries them (the
--     URL the page view started on); device, browser, os and country from the
--     first beacon; release and dims from the latest that has them;
--   * received_at is when the collector received the page view's first beacon;
--     day is the UTC day of the page view's start (see enrich.page_view_day).
-- Sessions: sid, or the page view itself when the snippet sent no sid.
-- converted: the page view recorded at least one event (a goal); revenue: the
-- sum of its events' values (0 when it converted without values).
CREATE MATERIALIZED VIEW reference.page_views_enriched AS
WITH folded AS (
    SELECT
        site,
        pv,
        min(day) AS day,
        min(received_at) AS received_at,
        min(t0) AS t0,
        (array_agg(sid ORDER BY seq DESC) FILTER (WHERE sid IS NOT NULL))[1] AS sid,
        (array_agg(consent ORDER BY seq DESC))[1] AS consent,
        (array_agg(path ORDER BY seq))[1] AS path,
        (array_agg(channel ORDER BY seq) FILTER (WHERE channel IS NOT NULL))[1] AS channel,
        (array_agg(ref_origin ORDER BY seq) FILTER (WHERE ref_origin IS NOT NULL))[1] AS ref_origin,
        (array_agg(utm_source ORDER BY seq) FILTER (WHERE consent = 'marketing'))[1] AS utm_source,
        (array_agg(utm_medium ORDER BY seq) FILTER (WHERE consent = 'marketing'))[1] AS utm_medium,
        (array_agg(utm_campaign ORDER BY seq) FILTER (WHERE consent = 'marketing'))[1] AS utm_campaign,
        (array_agg(utm_term ORDER BY seq) FILTER (WHERE consent = 'marketing'))[1] AS utm_term,
        (array_agg(utm_content ORDER BY seq) FILTER (WHERE consent = 'marketing'))[1] AS utm_content,
        (array_agg(device_class ORDER BY seq))[1] AS device_class,
        (array_agg(browser ORDER BY seq))[1] AS browser,
        (array_agg(os ORDER BY seq))[1] AS os,
        (array_agg(country ORDER BY seq))[1] AS country,
        (array_agg(release ORDER BY seq DESC) FILTER (WHERE release IS NOT NULL))[1] AS release,
        (array_agg(dims ORDER BY seq DESC) FILTER (WHERE dims IS NOT NULL))[1] AS dims,
        (array_agg(device ORDER BY seq DESC) FILTER (WHERE device IS NOT NULL))[1] AS device,
        (array_agg(nav ORDER BY seq) FILTER (WHERE nav IS NOT NULL))[1] AS nav,
        (array_agg(lcp ORDER BY seq DESC) FILTER (WHERE lcp IS NOT NULL))[1] AS lcp,
        (array_agg(inp ORDER BY seq DESC) FILTER (WHERE inp IS NOT NULL))[1] AS inp,
        (array_agg(cls ORDER BY seq DESC) FILTER (WHERE cls IS NOT NULL))[1] AS cls,
        (array_agg(fcp ORDER BY seq DESC) FILTER (WHERE fcp IS NOT NULL))[1] AS fcp,
        (array_agg(ttfb ORDER BY seq DESC) FILTER (WHERE ttfb IS NOT NULL))[1] AS ttfb,
        sum(event_count) AS event_count,
        sum(revenue) AS revenue,
        count(*) AS beacons
    FROM binome.beacons
    GROUP BY site, pv
)
SELECT
    site,
    pv,
    coalesce(sid, pv) AS sid,
    received_at,
    day,
    consent,
    path,
    CASE WHEN consent = 'marketing' THEN channel END AS channel,
    CASE WHEN consent = 'marketing' THEN utm_source END AS utm_source,
    CASE WHEN consent = 'marketing' THEN utm_medium END AS utm_medium,
    CASE WHEN consent = 'marketing' THEN utm_campaign END AS utm_campaign,
    device_class,
    browser,
    os,
    country,
    release,
    CASE WHEN consent = 'marketing' THEN dims
         WHEN dims ? 'page_type' THEN jsonb_build_object('page_type', dims -> 'page_type')
    END AS dims,
    lcp,
    inp,
    cls,
    fcp,
    ttfb,
    CASE WHEN consent = 'marketing' THEN event_count > 0 END AS converted,
    CASE WHEN consent = 'marketing' THEN coalesce(revenue, 0) END AS revenue,
    -- beyond the contract's columns:
    t0,
    CASE WHEN consent = 'marketing' THEN ref_origin END AS ref_origin,
    CASE WHEN consent = 'marketing' THEN utm_term END AS utm_term,
    CASE WHEN consent = 'marketing' THEN utm_content END AS utm_content,
    device,
    nav,
    beacons
FROM folded;

-- reference.sessions — grain: one row per session (site, sid).
--
-- The landing page view is the session's first, ordered by t0 (the client's
-- clock, one clock within a session), then by when the collector received it
-- (docs/beacon-format.md, "Definitions"). The session's channel and campaign are its landing
-- page view's: '(no consent)' when the landing page view was measured at the
-- performance level, '(none)' when it was measured with consent but carried
-- none. A session converts when any of its page views has an event.
CREATE MATERIALIZED VIEW reference.sessions AS
WITH ordered AS (
    SELECT
        p.*,
        row_number() OVER w AS position,
        count(*) OVER (PARTITION BY site, sid) AS page_views,
        bool_or(coalesce(converted, false)) OVER (PARTITION BY site, sid) AS session_converted,
        sum(revenue) OVER (PARTITION BY site, sid) AS session_revenue
    FROM reference.page_views_enriched p
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

-- reference.scorecard_daily — grain: day x site x channel x utm_campaign x device_class x country.
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
-- channel / utm_campaign are the session's landing page view's (reference.sessions).
-- A page view measured at the performance level counts under '(no consent)',
-- where conversion_rate and revenue are NULL: performance is known for every
-- visitor, marketing figures only for those who consented. Absent dimensions
-- are '(none)'. too_small: under 50 page views, too few to read (as GA4 does).
CREATE VIEW reference.scorecard_daily AS
WITH grouped AS (
    SELECT
        p.*,
        CASE WHEN p.consent = 'marketing' THEN s.channel ELSE '(no consent)' END AS group_channel,
        CASE WHEN p.consent = 'marketing' THEN s.utm_campaign ELSE '(no consent)' END AS group_campaign,
        s.converted AS session_converted
    FROM reference.page_views_enriched p
    JOIN reference.sessions s USING (site, sid)
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
    count(*) < 50 AS too_small,
    count(*) FILTER (WHERE lcp <= 2500) AS lcp_good,
    count(*) FILTER (WHERE lcp > 4000) AS lcp_poor,
    count(*) FILTER (WHERE inp <= 200) AS inp_good,
    count(*) FILTER (WHERE inp > 500) AS inp_poor,
    count(*) FILTER (WHERE cls <= 0.1) AS cls_good,
    count(*) FILTER (WHERE cls > 0.25) AS cls_poor,
    count(*) FILTER (WHERE fcp <= 1800) AS fcp_good,
    count(*) FILTER (WHERE fcp > 3000) AS fcp_poor,
    count(*) FILTER (WHERE ttfb <= 800) AS ttfb_good,
    count(*) FILTER (WHERE ttfb > 1800) AS ttfb_poor,
    count(*) FILTER (WHERE lcp <= 2500 AND cls <= 0.1 AND (inp IS NULL OR inp <= 200)) AS cwv_good
FROM grouped
GROUP BY day, site, group_channel, group_campaign,
         coalesce(device_class, '(none)'), coalesce(country, '(none)');

-- reference.perf_vs_conversion — grain: site x landing-page LCP bucket.
--
-- What speed costs: sessions grouped by their landing page view's LCP in
-- 500 ms buckets; lcp_bucket_ms is the bucket's lower bound, the last bucket
-- (10000) holds every landing LCP of 10 s and more. Only sessions whose landing
-- page view was measured at the marketing level count (conversions are only
-- known with consent), and only those whose landing page reported an LCP.
--   conversion_rate  % of the bucket's sessions that converted.
--   bounce_rate      % of the bucket's sessions of a single page view.
--   too_small        under 50 sessions, too few to read.
CREATE VIEW reference.perf_vs_conversion AS
SELECT
    site,
    least(floor(landing_lcp / 500) * 500, 10000)::integer AS lcp_bucket_ms,
    count(*) AS sessions,
    count(*) FILTER (WHERE converted) AS conversions,
    100.0 * count(*) FILTER (WHERE converted) / count(*) AS conversion_rate,
    100.0 * count(*) FILTER (WHERE page_views = 1) / count(*) AS bounce_rate,
    count(*) < 50 AS too_small,
    count(*) FILTER (WHERE page_views = 1) AS bounces
FROM reference.sessions
WHERE landing_consent = 'marketing' AND landing_lcp IS NOT NULL
GROUP BY site, least(floor(landing_lcp / 500) * 500, 10000)::integer;

-- reference.release_comparison — grain: site x release.
--
-- How each release of the site performs for real visitors, so IT can show the
-- gain of its work release by release. first_seen / last_seen: the first and
-- last page view received with that release. p75s and cwv_good_pct as in
-- reference.scorecard_daily (CrUX definitions). conversion_rate: % of the sessions
-- with a page view of this release measured with marketing consent that
-- converted; NULL when no page view of the release had consent. Page views
-- without a release count under '(none)'. too_small: under 50 page views.
CREATE VIEW reference.release_comparison AS
SELECT
    p.site,
    coalesce(p.release, '(none)') AS release,
    min(p.received_at) AS first_seen,
    max(p.received_at) AS last_seen,
    count(*) AS page_views,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY p.lcp) AS lcp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY p.inp) AS inp_p75,
    percentile_cont(0.75) WITHIN GROUP (ORDER BY p.cls) AS cls_p75,
    100.0 * count(*) FILTER (WHERE p.lcp <= 2500 AND p.cls <= 0.1 AND (p.inp IS NULL OR p.inp <= 200))
        / nullif(count(*) FILTER (WHERE p.lcp IS NOT NULL AND p.cls IS NOT NULL), 0) AS cwv_good_pct,
    100.0 * count(DISTINCT p.sid) FILTER (WHERE p.consent = 'marketing' AND s.converted)
        / nullif(count(DISTINCT p.sid) FILTER (WHERE p.consent = 'marketing'), 0) AS conversion_rate,
    count(*) < 50 AS too_small,
    count(*) FILTER (WHERE p.lcp IS NOT NULL AND p.cls IS NOT NULL) AS cwv_samples,
    count(*) FILTER (WHERE p.lcp <= 2500 AND p.cls <= 0.1 AND (p.inp IS NULL OR p.inp <= 200)) AS cwv_good
FROM reference.page_views_enriched p
JOIN reference.sessions s USING (site, sid)
GROUP BY p.site, coalesce(p.release, '(none)');
