-- rum.comparisons as first written (issue 21), over every folded page view at
-- each query: correct by definition, and the reference the fast view, read
-- from rollups (sql/views/55_comparisons.sql), must equal
-- (tests/test_comparisons.py). Sessions are grouped over the side's whole
-- span here; the fast view sums them per day, the same for sessions within one
-- UTC day (the stored sid is keyed by its day, sql/migrations/0002).
CREATE SCHEMA IF NOT EXISTS reference;
DROP VIEW IF EXISTS reference.comparisons CASCADE;
CREATE VIEW reference.comparisons AS
WITH today AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS today
), facts AS MATERIALIZED (
    SELECT p.site, p.day, p.sid, p.received_at, p.release, p.dims ->> 'ab_variant' AS variant,
           p.lcp, p.inp, p.cls, p.consent, f.session_converted
    FROM binome.page_views p
    JOIN binome.page_view_facts f ON f.site = p.site AND f.day = p.day AND f.pv = p.pv
), sides AS MATERIALIZED (
    -- One row per page view and side it belongs to.
    SELECT 'release'::text AS kind, f.release AS side, f.*
    FROM facts f WHERE f.release IS NOT NULL
    UNION ALL
    SELECT 'ab_variant', f.variant, f.*
    FROM facts f, today t WHERE f.variant IS NOT NULL AND f.day > t.today - 28
    UNION ALL
    SELECT 'period', (CASE WHEN f.day >= t.today - 7 THEN t.today - 7
                                   ELSE t.today - 14 END)::text, f.*
    FROM facts f, today t WHERE f.day >= t.today - 14 AND f.day < t.today
), per_session AS (
    SELECT site, kind, side, sid,
           count(lcp) AS m_lcp, count(inp) AS m_inp, count(cls) AS m_cls,
           count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL) AS m_cwv,
           bool_or(consent = 'marketing') AS marketing,
           bool_or(session_converted) AS converted
    FROM sides
    GROUP BY site, kind, side, sid
), session_sums AS (
    SELECT site, kind, side,
           rum.design_effect(sum(m_lcp)::bigint, sum(m_lcp * m_lcp)::bigint) AS deff_lcp,
           rum.design_effect(sum(m_inp)::bigint, sum(m_inp * m_inp)::bigint) AS deff_inp,
           rum.design_effect(sum(m_cls)::bigint, sum(m_cls * m_cls)::bigint) AS deff_cls,
           rum.design_effect(sum(m_cwv)::bigint, sum(m_cwv * m_cwv)::bigint) AS deff_cwv,
           count(*) FILTER (WHERE marketing) AS sessions,
           count(*) FILTER (WHERE marketing AND converted) AS conversions
    FROM per_session
    GROUP BY site, kind, side
), per_side AS (
    SELECT s.site, s.kind, s.side, min(s.received_at) AS first_seen,
           array_agg(s.lcp) FILTER (WHERE s.lcp IS NOT NULL) AS lcps,
           array_agg(s.inp) FILTER (WHERE s.inp IS NOT NULL) AS inps,
           array_agg(s.cls) FILTER (WHERE s.cls IS NOT NULL) AS clss,
           count(*) FILTER (WHERE s.lcp IS NOT NULL AND s.cls IS NOT NULL) AS cwv_samples,
           count(*) FILTER (WHERE rum.cwv_good(s.lcp, s.inp, s.cls)) AS cwv_good
    FROM sides s
    GROUP BY s.site, s.kind, s.side
), valued AS (
    SELECT p.site, p.kind, p.side, p.first_seen,
           rum.p75_interval(p.lcps, m.deff_lcp) AS lcp,
           rum.p75_interval(p.inps, m.deff_inp) AS inp,
           rum.p75_interval(p.clss, m.deff_cls) AS cls,
           coalesce(cardinality(p.lcps), 0)::bigint AS lcp_n,
           coalesce(cardinality(p.inps), 0)::bigint AS inp_n,
           coalesce(cardinality(p.clss), 0)::bigint AS cls_n,
           p.cwv_samples, p.cwv_good, m.deff_cwv, m.sessions, m.conversions
    FROM per_side p
    JOIN session_sums m USING (site, kind, side)
), pairs AS (
    SELECT site, kind, side AS subject,
           lag(side) OVER (PARTITION BY site ORDER BY first_seen, side) AS baseline
    FROM valued WHERE kind = 'release'
    UNION ALL
    SELECT v.site, v.kind, v.side, b.side
    FROM valued v
    JOIN LATERAL (
        SELECT w.side FROM valued w
        WHERE w.site = v.site AND w.kind = 'ab_variant' AND w.side IN ('A', 'control')
        ORDER BY w.side = 'A' DESC LIMIT 1) AS b ON b.side <> v.side
    WHERE v.kind = 'ab_variant'
    UNION ALL
    SELECT v.site, v.kind, v.side, (t.today - 14)::text
    FROM valued v, today t
    WHERE v.kind = 'period' AND v.side = (t.today - 7)::text
), metrics AS (
    SELECT p.site, p.kind, p.subject, p.baseline, m.*
    FROM pairs p
    JOIN valued s ON s.site = p.site AND s.kind = p.kind AND s.side = p.subject
    LEFT JOIN valued b ON b.site = p.site AND b.kind = p.kind AND b.side = p.baseline
    CROSS JOIN LATERAL (VALUES
        ('lcp_p75', s.lcp[1], b.lcp[1], s.lcp_n, coalesce(b.lcp_n, 0),
         rum.p75_difference_interval(s.lcp, b.lcp), true),
        ('inp_p75', s.inp[1], b.inp[1], s.inp_n, coalesce(b.inp_n, 0),
         rum.p75_difference_interval(s.inp, b.inp), true),
        ('cls_p75', s.cls[1], b.cls[1], s.cls_n, coalesce(b.cls_n, 0),
         rum.p75_difference_interval(s.cls, b.cls), true),
        ('cwv_good_pct', 100.0::float8 * s.cwv_good / nullif(s.cwv_samples, 0),
         100.0::float8 * b.cwv_good / nullif(b.cwv_samples, 0), s.cwv_samples,
         coalesce(b.cwv_samples, 0),
         rum.newcombe_interval(s.cwv_good, s.cwv_samples, b.cwv_good, b.cwv_samples,
                               s.deff_cwv, b.deff_cwv), false),
        ('conversion_rate', 100.0::float8 * s.conversions / nullif(s.sessions, 0),
         100.0::float8 * b.conversions / nullif(b.sessions, 0), s.sessions,
         coalesce(b.sessions, 0),
         rum.newcombe_interval(s.conversions, s.sessions, b.conversions, b.sessions), false)
    ) AS m(metric, subject_value, baseline_value, subject_n, baseline_n, interval,
           lower_is_better)
    WHERE p.baseline IS NOT NULL
)
SELECT
    site,
    kind,
    subject,
    baseline,
    metric,
    subject_value,
    baseline_value,
    subject_value - baseline_value AS delta,
    CASE WHEN NOT (rum.too_small(subject_n) OR rum.too_small(baseline_n)) THEN interval[1] END
        AS delta_low,
    CASE WHEN NOT (rum.too_small(subject_n) OR rum.too_small(baseline_n)) THEN interval[2] END
        AS delta_high,
    subject_n,
    baseline_n,
    rum.verdict(subject_n, baseline_n, interval[1], interval[2], lower_is_better) AS verdict
FROM metrics;
