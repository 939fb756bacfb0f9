-- rum.good_threshold(metric), rum.poor_threshold(metric), rum.too_small(n) —
-- the shared indicators' rules, for the views and for analysts.
--
-- CrUX's thresholds (https://web.dev/articles/vitals): a value is good at or
-- under good_threshold, poor over poor_threshold; metric is 'lcp', 'inp',
-- 'cls', 'fcp' or 'ttfb' (NULL for any other). too_small: a group of under 50
-- page views (sessions in rum.perf_vs_conversion) is too few to read, as GA4
-- flags its thresholded data. collector/indicators.py holds the same for
-- Python; tests/test_indicators.py checks they agree.
-- LANGUAGE sql, IMMUTABLE, one expression: the planner inlines them and folds
-- a call with a constant metric into that constant, so a view plans as with
-- a literal. float8 as the metrics' columns are: 0.1 is the same double as
-- the literal in `cls <= 0.1` and as binome.metric_bin_edges' edge.
CREATE OR REPLACE FUNCTION rum.good_threshold(metric text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE metric WHEN 'lcp' THEN 2500 WHEN 'inp' THEN 200 WHEN 'cls' THEN 0.1
                        WHEN 'fcp' THEN 1800 WHEN 'ttfb' THEN 800 END)::float8
$$;

CREATE OR REPLACE FUNCTION rum.poor_threshold(metric text) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (CASE metric WHEN 'lcp' THEN 4000 WHEN 'inp' THEN 500 WHEN 'cls' THEN 0.25
                        WHEN 'fcp' THEN 3000 WHEN 'ttfb' THEN 1800 END)::float8
$$;

CREATE OR REPLACE FUNCTION rum.too_small(n bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT n < 50
$$;

-- CrUX's "good experience": LCP, CLS and, where measured, INP all good (NULL
-- when LCP or CLS is missing, which a FILTER counts as not good).
CREATE OR REPLACE FUNCTION rum.cwv_good(lcp float8, inp float8, cls float8) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lcp <= rum.good_threshold('lcp') AND cls <= rum.good_threshold('cls')
           AND (inp IS NULL OR inp <= rum.good_threshold('inp'))
$$;
