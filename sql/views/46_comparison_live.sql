-- binome.comparison_live, binome.comparison_bins_live — internal, grain:
-- day x site x kind x side (x metric x bin).
--
-- rum.comparisons' counts for the page views computed live
-- (binome.live_page_views), per day, in the shape of the rollups `binome
-- maintain` fills from them (binome.comparison_days, comparison_day_bins;
-- sql/migrations/0004_comparison_rollups.sql). Sides: 'release' (each release,
-- '(none)' for page views without one, as in binome.release_live: the period
-- sides read their values through the releases of their days), 'ab_variant' (each value of
-- dims->>'ab_variant', read from binome.page_views: the facts do not carry
-- dims) and 'period' (side '(site)': all the site-day's page views).
--
-- Sessions are grouped per day: the design effect's sum of m^2 is a sum over
-- days. The stored sid is keyed by its UTC day (sql/migrations/0002), so a
-- session crossing midnight is two sessions anyway. sessions / conversions
-- (conversion_rate, contract section 6): for a release, each session once per
-- release whatever its days (first_in_release, as binome.release_live); for the
-- other sides the sessions of the day with a page view of the side measured
-- with marketing consent, and those of them that converted.
DROP VIEW IF EXISTS binome.live_variants CASCADE;
DROP VIEW IF EXISTS binome.comparison_live CASCADE;
DROP VIEW IF EXISTS binome.comparison_bins_live CASCADE;

-- The ab_variant of each live page view that has one. binome.page_view_facts
-- does not carry dims, so they are read from binome.page_views, per live
-- site-day through its index on day (page_views_day): the live days' rows,
-- not the whole table.
CREATE VIEW binome.live_variants AS
SELECT p.site, p.pv, p.dims ->> 'ab_variant' AS variant
FROM binome.live_days() AS l
JOIN binome.page_views p ON p.day = l.day AND p.site = l.site
WHERE p.dims ? 'ab_variant';

CREATE VIEW binome.comparison_live AS
WITH sided AS (
    -- Each live page view once per side it belongs to.
    SELECT f.day, f.site, s.kind, s.side, f.sid, f.received_at, f.lcp, f.inp, f.cls,
           f.consent, f.first_in_release, f.session_converted
    FROM binome.live_page_views f
    LEFT JOIN binome.live_variants v ON v.site = f.site AND v.pv = f.pv
    CROSS JOIN LATERAL (VALUES
        ('release'::text, coalesce(f.release, '(none)')::text),
        ('ab_variant', v.variant),
        ('period', '(site)')
    ) AS s(kind, side)
    WHERE s.side IS NOT NULL
), per_session AS (
    SELECT day, site, kind, side, sid,
           min(received_at) AS first_seen,
           count(lcp) AS m_lcp, count(inp) AS m_inp, count(cls) AS m_cls,
           count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL) AS m_cwv,
           count(*) FILTER (WHERE rum.cwv_good(lcp, inp, cls)) AS good,
           CASE WHEN kind = 'release' THEN bool_or(first_in_release)
                ELSE bool_or(consent = 'marketing') END AS counted,
           bool_or(session_converted) AS converted
    FROM sided
    GROUP BY day, site, kind, side, sid
)
SELECT
    site,
    day,
    kind,
    side,
    min(first_seen) AS first_seen,
    sum(m_lcp)::bigint AS lcp_samples,
    sum(m_inp)::bigint AS inp_samples,
    sum(m_cls)::bigint AS cls_samples,
    sum(m_cwv)::bigint AS cwv_samples,
    sum(good)::bigint AS cwv_good,
    sum(m_lcp * m_lcp)::bigint AS lcp_squares,
    sum(m_inp * m_inp)::bigint AS inp_squares,
    sum(m_cls * m_cls)::bigint AS cls_squares,
    sum(m_cwv * m_cwv)::bigint AS cwv_squares,
    count(*) FILTER (WHERE counted) AS sessions,
    count(*) FILTER (WHERE counted AND converted) AS conversions
FROM per_session
GROUP BY site, day, kind, side;

-- The fine bins (as binome.release_bins_live's) of the 'ab_variant' and
-- 'period' sides; a release's are binome.release_bins_live's.
CREATE VIEW binome.comparison_bins_live AS
WITH sided AS (
    SELECT f.day, f.site, s.kind, s.side, f.lcp, f.inp, f.cls
    FROM binome.live_page_views f
    LEFT JOIN binome.live_variants v ON v.site = f.site AND v.pv = f.pv
    CROSS JOIN LATERAL (VALUES
        ('ab_variant'::text, v.variant),
        ('period', '(site)')
    ) AS s(kind, side)
    WHERE s.side IS NOT NULL
)
SELECT site, day, kind, side, m.metric, m.bin, count(*) AS page_views
FROM sided
CROSS JOIN LATERAL (VALUES
    ('lcp'::text, binome.metric_bin('lcp_fine', lcp)),
    ('inp', binome.metric_bin('inp_fine', inp)),
    ('cls', binome.metric_bin('cls_fine', cls))
) AS m(metric, bin)
WHERE m.bin IS NOT NULL
GROUP BY site, day, kind, side, m.metric, m.bin;
