-- rum.page_views_enriched — grain: one row per page view (site, pv).
--
-- A page view sends several beacons (seq 0, 1, 2 ...). They are folded into
-- binome.page_views (binome.refold_page_views, sql/functions/30_fold.sql) by the
-- collector's folder right behind the writes (or in the transaction
-- that stores them, without the deferred fold), so this view follows the
-- beacons within the fold's lag (binome_fold_lag_seconds):
--   * each metric's final value is the one of the highest seq that reported it,
--     whatever order the beacons arrived in (docs/beacon-format.md, "The beacon");
--   * consent is that of the highest seq: the visitor's latest decision. The
--     marketing columns (channel, utm_*, dims other than page_type, converted,
--     revenue) are NULL unless that decision is 'marketing';
--   * path, utm_* and channel come from the lowest seq that carries them (the
--     URL the page view started on); device, browser, os and country from the
--     first beacon; release and dims from the latest that has them;
--   * received_at is when the collector received the page view's first beacon,
--     to the minute: no finer time to match against a proxy's access log, which
--     has the visitor's address (issue 20; docs/privacy.md);
--     day is the UTC day of the page view's start (see enrich.page_view_day).
-- Sessions: sid, or the page view itself when the snippet sent no sid.
-- converted: the page view recorded at least one event (a goal); revenue: the
-- sum of its events' values (0 when it converted without values).
DROP VIEW IF EXISTS rum.page_views_enriched CASCADE;
CREATE VIEW rum.page_views_enriched AS
SELECT
    site,
    pv,
    sid,
    date_trunc('minute', received_at) AS received_at,
    day,
    consent,
    path,
    channel,
    utm_source,
    utm_medium,
    utm_campaign,
    device_class,
    browser,
    os,
    country,
    release,
    dims,
    lcp,
    inp,
    cls,
    fcp,
    ttfb,
    converted,
    revenue,
    -- beyond the contract's columns:
    t0,
    ref_origin,
    utm_term,
    utm_content,
    device,
    nav,
    beacons::bigint AS beacons
FROM binome.page_views;
