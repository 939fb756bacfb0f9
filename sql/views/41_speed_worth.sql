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
-- Counts per landing day come from rollups for closed days (binome.worth_days)
-- and live for the others (binome.worth_live), summed per channel and campaign.
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
), per_group AS (
    -- Per channel and campaign, the days' counts: from the rollup for closed
    -- (and snapshotted) days, live for the others, as rum.perf_vs_conversion
    -- reads them. The period's bounds written out (not joined from `period`):
    -- stable expressions the planner applies to each side's days.
    SELECT site, channel, utm_campaign,
           sum(sessions) AS sessions,
           sum(conversions) AS conversions,
           sum(revenue) AS revenue,
           sum(fast_sessions) AS fast_sessions,
           sum(fast_conversions) AS fast_conversions,
           sum(slow_sessions) AS slow_sessions,
           sum(slow_conversions) AS slow_conversions
    FROM (
        SELECT r.site, r.channel, r.utm_campaign, r.sessions, r.conversions, r.revenue,
               r.fast_sessions, r.fast_conversions, r.slow_sessions, r.slow_conversions
        FROM binome.worth_days r
        WHERE r.day BETWEEN (now() AT TIME ZONE 'UTC')::date - 27 AND (now() AT TIME ZONE 'UTC')::date
          AND NOT EXISTS (
              SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
        UNION ALL
        SELECT l.site, l.channel, l.utm_campaign, l.sessions, l.conversions, l.revenue,
               l.fast_sessions, l.fast_conversions, l.slow_sessions, l.slow_conversions
        FROM binome.worth_live l
        WHERE l.day BETWEEN (now() AT TIME ZONE 'UTC')::date - 27 AND (now() AT TIME ZONE 'UTC')::date
    ) AS days
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
