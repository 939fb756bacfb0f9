-- rum.objectives — grain: objective; rum.objective_weeks — grain: objective x
-- week (contract section 7, issue 21).
--
-- An objective (binome.objectives, `binome objective add`) is a target for
-- one metric of a site over the last 28 days (the 28 UTC days ending today),
-- optionally narrowed by a scope whose every key must hold:
--   channel, utm_campaign  the page view's group in rum.scorecard_daily: its
--                          session's landing page view's channel and campaign,
--                          '(no consent)' for a page view measured at the
--                          performance level (sql/views/20_sessions.sql);
--   device_class, country  the page view's;
--   page_type              its dims.page_type;
--   landing = true         landing page views only (the first of their session).
-- value, n and the 95 % interval are computed as rum.comparisons computes each
-- side (sql/views/55_comparisons.sql, docs/analyst-guide.md): p75s exact
-- (percentile_cont(0.75)) with order-statistic intervals (rum.p75_interval),
-- percentages with Wilson's interval (rum.wilson_interval), both widened by
-- the design effect of sessions (rum.design_effect) but conversion_rate,
-- whose unit is the session; n counts page views with the metric (sessions
-- with a page view in scope measured with marketing consent for
-- conversion_rate).
-- status (rum.objective_status): 'too few' under 50 (rum.too_small), 'met' or
-- 'missed' when the interval lies on one side of the target, 'at risk' when
-- the target lies inside it. The p75s are held at most at their target,
-- cwv_good_pct and conversion_rate at least at theirs.

-- One row per objective and page view in its scope, over the days any
-- period below reaches. Each objective's scope is read from its jsonb once
-- (OFFSET 0 keeps that subquery apart), not once per page view.
DROP VIEW IF EXISTS binome.objective_scoped CASCADE;
CREATE VIEW binome.objective_scoped AS
SELECT f.site, o.name, o.metric, f.day, f.sid, f.consent, f.session_converted,
       CASE o.metric WHEN 'lcp_p75' THEN f.lcp WHEN 'inp_p75' THEN f.inp
                     WHEN 'cls_p75' THEN f.cls END AS p75_value,
       f.lcp IS NOT NULL AND f.cls IS NOT NULL AS cwv_sample,
       coalesce(rum.cwv_good(f.lcp, f.inp, f.cls), false) AS cwv_good,
       t.today
FROM (SELECT site, name, metric, scope ->> 'channel' AS channel,
             scope ->> 'utm_campaign' AS utm_campaign, scope ->> 'device_class' AS device_class,
             scope ->> 'country' AS country, scope ->> 'page_type' AS page_type,
             coalesce((scope ->> 'landing')::boolean, false) AS landing_only
      FROM binome.objectives OFFSET 0) AS o
CROSS JOIN (SELECT (now() AT TIME ZONE 'UTC')::date AS today) AS t
JOIN binome.page_view_facts f
  ON f.site = o.site
 AND f.day >= least(t.today - 27, date_trunc('week', t.today)::date - 49)
 AND f.day <= t.today
WHERE (o.channel IS NULL OR f.group_channel = o.channel)
  AND (o.utm_campaign IS NULL OR f.group_campaign = o.utm_campaign)
  AND (o.device_class IS NULL OR f.device_class = o.device_class)
  AND (o.country IS NULL OR f.country = o.country)
  AND (NOT o.landing_only OR f.is_landing)
  -- page_type is in binome.page_views' dims only: looked up for the
  -- objectives that name one.
  AND (o.page_type IS NULL OR EXISTS (
           SELECT FROM binome.page_views p
           WHERE p.site = f.site AND p.pv = f.pv AND p.dims ->> 'page_type' = o.page_type));

-- The same rows by period: the 28-day window ('28 days', from today - 27)
-- and each of the 8 weeks ending with the current one ('week', from its
-- Monday). A view, not a CTE, so that a query for one period plans only its
-- branch of the UNION, and reads only that period's days. Keys compare
-- bytewise (COLLATE "C", as page_view_facts' do): sorting a million page
-- views by them with the locale's rules costs several times more.
DROP VIEW IF EXISTS binome.objective_page_views CASCADE;
CREATE VIEW binome.objective_page_views AS
SELECT '28 days'::text COLLATE "C" AS period, today - 27 AS period_start, s.*
FROM binome.objective_scoped s
WHERE day > (now() AT TIME ZONE 'UTC')::date - 28
UNION ALL
SELECT 'week', date_trunc('week', day)::date, s.*
FROM binome.objective_scoped s
WHERE day >= date_trunc('week', (now() AT TIME ZONE 'UTC')::date)::date - 49;

-- {value, low, high, n}: an objective's figures over one period's page views,
-- read once. Each page view learns its session's counts by a window (one
-- sort; grouping sessions first would hold a state per session): with m_i
-- the page views of session i with a figure, sum(m_i) is the count of page
-- views with it and sum(m_i^2) the sum, over those page views, of their
-- session's m_i, which rum.design_effect takes.
DROP VIEW IF EXISTS binome.objective_values CASCADE;
CREATE VIEW binome.objective_values AS
WITH per_page_view AS (
    SELECT site, name, metric, period, period_start, p75_value, cwv_sample, cwv_good,
           count(p75_value) OVER session AS m_value,
           count(*) FILTER (WHERE cwv_sample) OVER session AS m_cwv,
           bool_or(consent = 'marketing') OVER session AS marketing,
           bool_or(session_converted) OVER session AS converted,
           row_number() OVER session = 1 AS first_of_session
    FROM binome.objective_page_views
    -- site: a query for one site reads that site's page views only (a filter
    -- goes below a window on its partitioning columns alone).
    WINDOW session AS (PARTITION BY period, period_start, site, name, sid)
), per_period AS (
    SELECT site, name, min(metric) AS metric, period, period_start,
           array_agg(p75_value) FILTER (WHERE p75_value IS NOT NULL) AS p75_values,
           rum.design_effect(count(p75_value),
                             sum(m_value) FILTER (WHERE p75_value IS NOT NULL)::bigint)
               AS deff_value,
           rum.design_effect(count(*) FILTER (WHERE cwv_sample),
                             sum(m_cwv) FILTER (WHERE cwv_sample)::bigint) AS deff_cwv,
           count(*) FILTER (WHERE cwv_sample) AS cwv_samples,
           count(*) FILTER (WHERE cwv_good) AS cwv_good,
           count(*) FILTER (WHERE first_of_session AND marketing) AS sessions,
           count(*) FILTER (WHERE first_of_session AND marketing AND converted) AS conversions
    FROM per_page_view
    -- The window's order (metric is the objective's: min() of one value), so
    -- the page views are not sorted again.
    GROUP BY period, period_start, site, name
)
SELECT p.site, p.name, p.period, p.period_start, v.value, v.low, v.high, v.n
FROM per_period p
-- (OFFSET 0: each interval computed once, not once per element read from it.)
CROSS JOIN LATERAL (
    SELECT iv[1] AS value, iv[2] AS low, iv[3] AS high,
           coalesce(cardinality(p.p75_values), 0)::bigint AS n
    FROM (SELECT rum.p75_interval(p.p75_values, p.deff_value) AS iv OFFSET 0) AS i
    WHERE p.metric IN ('lcp_p75', 'inp_p75', 'cls_p75')
    UNION ALL
    SELECT 100.0::float8 * p.cwv_good / nullif(p.cwv_samples, 0), 100 * w[1], 100 * w[2],
           p.cwv_samples
    FROM (SELECT rum.wilson_interval(p.cwv_good, p.cwv_samples, p.deff_cwv) AS w OFFSET 0) AS i
    WHERE p.metric = 'cwv_good_pct'
    UNION ALL
    SELECT 100.0::float8 * p.conversions / nullif(p.sessions, 0), 100 * w[1], 100 * w[2],
           p.sessions
    FROM (SELECT rum.wilson_interval(p.conversions, p.sessions) AS w OFFSET 0) AS i
    WHERE p.metric = 'conversion_rate'
) AS v;

-- An objective's status from its interval (see the header): at_most for the
-- p75s, whose target is a ceiling; else the target is a floor.
CREATE OR REPLACE FUNCTION rum.objective_status(
    n bigint, low float8, high float8, target float8, at_most boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN rum.too_small(coalesce(n, 0)) THEN 'too few'
        WHEN low IS NULL OR high IS NULL THEN NULL
        WHEN at_most AND high <= target OR NOT at_most AND low >= target THEN 'met'
        WHEN at_most AND low > target OR NOT at_most AND high < target THEN 'missed'
        ELSE 'at risk' END
$$;

CREATE VIEW rum.objectives AS
SELECT
    o.site,
    o.name,
    o.metric,
    o.target,
    o.scope,
    v.value,
    CASE WHEN NOT rum.too_small(coalesce(v.n, 0)) THEN v.low END AS value_low,
    CASE WHEN NOT rum.too_small(coalesce(v.n, 0)) THEN v.high END AS value_high,
    coalesce(v.n, 0) AS n,
    rum.objective_status(coalesce(v.n, 0), v.low, v.high, o.target,
                         o.metric IN ('lcp_p75', 'inp_p75', 'cls_p75')) AS status,
    -- beyond the contract's columns:
    o.created_at
FROM binome.objectives o
LEFT JOIN binome.objective_values v
       ON v.site = o.site AND v.name = o.name AND v.period = '28 days';

-- rum.objective_weeks — grain: objective x week: the 8 UTC weeks (Monday to
-- Sunday) ending with the current one, a row for each even without page
-- views (n 0, value NULL): the scorecard's trend of each objective.
CREATE VIEW rum.objective_weeks AS
SELECT o.site, o.name, w.week_start::date AS week_start, v.value,
       coalesce(v.n, 0) AS n
FROM binome.objectives o
CROSS JOIN generate_series(date_trunc('week', (now() AT TIME ZONE 'UTC')::date) - interval '7 weeks',
                           date_trunc('week', (now() AT TIME ZONE 'UTC')::date),
                           interval '1 week') AS w(week_start)
LEFT JOIN binome.objective_values v
       ON v.site = o.site AND v.name = o.name AND v.period = 'week'
      AND v.period_start = w.week_start::date;

-- rum.objective_results — grain: objective: the figures of the last `binome
-- objective check` (stored in binome.objectives, sql/migrations/0005), what
-- the scorecard's Objectives band shows: one row per objective, read by its
-- key, at any traffic. rum.objectives is the same computed now; these are
-- at most BINOME_OBJECTIVE_CHECK_MINUTES old (checked_at), NULL until the
-- objective's first check.
DROP VIEW IF EXISTS rum.objective_results;
CREATE VIEW rum.objective_results AS
SELECT site, name, metric, target, scope, value, value_low, value_high, n, status,
       weeks, checked_at
FROM binome.objectives;
