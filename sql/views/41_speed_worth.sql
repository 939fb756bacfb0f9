-- rum.speed_worth — grain: site x scope x scope_value (issue 21).
--
-- What speed is worth, beside what it costs (rum.perf_vs_conversion): the
-- conversions, and revenue, the last 28 days (the 28 UTC days ending today,
-- as rum.comparisons' A/B variants) would have had if the sessions that
-- landed on a slow page (landing LCP over rum.good_threshold('lcp')) had
-- converted like those that landed on a fast one. A correlation, not a proof:
-- the slow and fast sessions may differ in campaign, device and intent
-- (docs/analyst-guide.md, "What speed is worth").
-- Sessions as rum.perf_vs_conversion counts them: their landing page view
-- measured with marketing consent and with an LCP; the session's channel and
-- campaign are its landing page view's (rum.sessions), its day the landing's.
--   scope, scope_value  'site' '(all)', 'channel' and a channel, or 'campaign'
--                       and a campaign ('(none)' when it carried none).
--   extra_conversions   slow_sessions x (fast rate - slow rate);
--   _low, _high         its 95 % interval: Newcombe's interval of the rate
--                       difference (rum.newcombe_interval; sessions are
--                       independent, no design effect) times slow_sessions;
--                       NULL when too_small.
--   revenue_per_conversion  the scope's revenue over its converting sessions;
--   extra_revenue (_low, _high)  extra_conversions (and its bounds) times it,
--                       the mean order value taken as known: the interval
--                       leaves its spread out.
--   too_small           either side (fast, slow) under rum.too_small's sessions.
DROP VIEW IF EXISTS rum.speed_worth CASCADE;
CREATE VIEW rum.speed_worth AS
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
