-- rum.page_views_enriched — grain: one row per page view (site, pv).
--
-- A page view sends several beacons (seq 0, 1, 2 ...). They are folded here:
--   * each metric's final value is the one of the highest seq that reported it,
--     whatever order the beacons arrived in (CONTRACT section 5);
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
DROP VIEW IF EXISTS rum.page_views_enriched CASCADE;
CREATE VIEW rum.page_views_enriched AS
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
