-- rum.speed_worth as first written (issue 21), over every landing page view of
-- the 28 days at each query: correct by definition, and the reference the fast
-- view, read from rollups (sql/views/41_speed_worth.sql), must equal
-- (tests/test_speed_worth.py).
CREATE SCHEMA IF NOT EXISTS reference;
DROP VIEW IF EXISTS reference.speed_worth CASCADE;
CREATE VIEW reference.speed_worth AS
WITH period AS (
    SELECT today - 27 AS first_day, today AS last_day
    FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS today) AS t
), landings AS (
    SELECT f.site, f.session_channel AS channel, f.session_campaign AS utm_campaign,
           f.lcp <= rum.good_threshold('lcp') AS fast,
           coalesce(f.session_converted, false) AS converted, f.session_revenue AS revenue
    FROM binome.page_view_facts f
    -- The period's bounds written out (not joined from `period`): a stable
    -- expression prunes the other days' partitions when the query starts.
    WHERE f.day BETWEEN (now() AT TIME ZONE 'UTC')::date - 27 AND (now() AT TIME ZONE 'UTC')::date
      AND f.is_landing AND f.consent = 'marketing' AND f.lcp IS NOT NULL
), per_group AS (
    SELECT site, channel, utm_campaign,
           count(*) AS sessions,
           count(*) FILTER (WHERE converted) AS conversions,
           sum(revenue) FILTER (WHERE converted) AS revenue,
           count(*) FILTER (WHERE fast) AS fast_sessions,
           count(*) FILTER (WHERE fast AND converted) AS fast_conversions,
           count(*) FILTER (WHERE NOT fast) AS slow_sessions,
           count(*) FILTER (WHERE NOT fast AND converted) AS slow_conversions
    FROM landings
    GROUP BY site, channel, utm_campaign
), sides AS (
    -- Each channel-and-campaign group counted in its site, its channel and its
    -- campaign. Plain GROUP BYs (not GROUPING SETS, which PostgreSQL does not
    -- push a WHERE through), so a query for one site reads that site's rows only.
    SELECT g.site, s.scope, s.scope_value,
           sum(g.sessions)::bigint AS sessions,
           sum(g.conversions)::bigint AS conversions,
           sum(g.revenue) AS revenue,
           sum(g.fast_sessions)::bigint AS fast_sessions,
           sum(g.fast_conversions)::bigint AS fast_conversions,
           sum(g.slow_sessions)::bigint AS slow_sessions,
           sum(g.slow_conversions)::bigint AS slow_conversions
    FROM per_group g
    CROSS JOIN LATERAL (VALUES ('site', '(all)'), ('channel', g.channel),
                               ('campaign', g.utm_campaign)) AS s(scope, scope_value)
    GROUP BY g.site, s.scope, s.scope_value
), estimated AS (
    SELECT s.*,
           rum.too_small(s.fast_sessions) OR rum.too_small(s.slow_sessions) AS too_small,
           s.revenue / nullif(s.conversions, 0) AS revenue_per_conversion,
           s.slow_sessions * (s.fast_conversions::float8 / nullif(s.fast_sessions, 0)
                              - s.slow_conversions::float8 / nullif(s.slow_sessions, 0))
               AS extra_conversions,
           rum.newcombe_interval(s.fast_conversions, s.fast_sessions,
                                 s.slow_conversions, s.slow_sessions) AS rate_interval
    FROM sides s
)
SELECT
    e.site,
    e.scope,
    e.scope_value,
    p.first_day,
    p.last_day,
    e.sessions,
    e.conversions,
    e.revenue,
    e.fast_sessions,
    e.fast_conversions,
    100.0 * e.fast_conversions / nullif(e.fast_sessions, 0) AS fast_conversion_rate,
    e.slow_sessions,
    e.slow_conversions,
    100.0 * e.slow_conversions / nullif(e.slow_sessions, 0) AS slow_conversion_rate,
    e.extra_conversions,
    CASE WHEN NOT e.too_small THEN e.slow_sessions * e.rate_interval[1] / 100 END
        AS extra_conversions_low,
    CASE WHEN NOT e.too_small THEN e.slow_sessions * e.rate_interval[2] / 100 END
        AS extra_conversions_high,
    e.revenue_per_conversion,
    e.extra_conversions * e.revenue_per_conversion::float8 AS extra_revenue,
    CASE WHEN NOT e.too_small
         THEN e.slow_sessions * e.rate_interval[1] / 100 * e.revenue_per_conversion::float8 END
        AS extra_revenue_low,
    CASE WHEN NOT e.too_small
         THEN e.slow_sessions * e.rate_interval[2] / 100 * e.revenue_per_conversion::float8 END
        AS extra_revenue_high,
    e.too_small
FROM estimated e, period p;
