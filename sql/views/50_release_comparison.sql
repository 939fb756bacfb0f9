-- rum.release_comparison — grain: site x release.
--
-- How each release of the site performs for real visitors, so IT can show the
-- gain of its work release by release. first_seen / last_seen: the first and
-- last page view received with that release. p75s and cwv_good_pct as in
-- rum.scorecard_daily (CrUX definitions). conversion_rate: % of the sessions
-- with a page view of this release measured with marketing consent that
-- converted; NULL when no page view of the release had consent. Page views
-- without a release count under '(none)'. too_small: under 50 page views.
DROP VIEW IF EXISTS rum.release_comparison CASCADE;
CREATE VIEW rum.release_comparison AS
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
    count(*) < 50 AS too_small
FROM rum.page_views_enriched p
JOIN rum.sessions s USING (site, sid)
GROUP BY p.site, coalesce(p.release, '(none)');
