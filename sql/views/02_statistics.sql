-- Confidence intervals for rum.comparisons (contract section 7, issue 21); the
-- method and its sources: docs/analyst-guide.md, "How sure is a difference".
-- z is the normal quantile of 0.975. deff, the design effect, widens an
-- interval for page views of one session that are not independent: a side's
-- n page views count as n / deff independent ones.
CREATE OR REPLACE FUNCTION rum.z95() RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT 1.959963984540054::float8
$$;

-- The design effect of page views grouped in sessions, m_i page views (with
-- the metric) in session i: sum(m_i^2) / sum(m_i), the mean session size seen
-- from a page view. It is the design effect 1 + (m - 1) * rho of Kish (1965)
-- for an intra-session correlation rho = 1, the most a session's page views
-- can resemble each other: an upper bound, so the intervals err wide. 1 when
-- every session has one page view.
CREATE OR REPLACE FUNCTION rum.design_effect(sum_m bigint, sum_m_squared bigint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN sum_m > 0 THEN greatest(sum_m_squared::float8 / sum_m, 1) END
$$;

-- The ranks (1-based) of the order statistics a p75 and its 95 % interval
-- read among n sorted values, {lo, hi, j, k}: percentile_cont(0.75)
-- interpolates between ranks lo = floor(h) + 1 and hi = ceil(h) + 1 at
-- h = 0.75 (n - 1) (orderedsetaggs.c); j and k are the ranks whose
-- Binomial(n, 0.75) tails hold 2.5 % each, by the normal approximation
-- (Conover, Practical Nonparametric Statistics, 3rd ed., 1999, section 3.2):
-- j = floor(n 0.75 - z sqrt(n 0.75 0.25 deff)), k = ceil(n 0.75 + z sqrt(...)) + 1,
-- clamped to 1..n. NULL when n is 0. The one definition of these ranks: the
-- sorted array of rum.p75_interval and the histograms of rum.comparisons
-- read the values at them.
-- PL/pgSQL, like the functions below that are not a single expression: a SQL
-- function with a FROM clause is not inlined, and runs as a query of its own
-- at each call (milliseconds each, for what takes microseconds here).
CREATE OR REPLACE FUNCTION rum.p75_ranks(n bigint, deff float8 DEFAULT 1) RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    h float8 := 0.75::float8 * (n - 1);
    spread float8 := rum.z95() * sqrt(n * 0.75 * 0.25 * coalesce(deff, 1));
BEGIN
    IF NOT n > 0 THEN
        RETURN NULL;
    END IF;
    RETURN ARRAY[floor(h)::bigint + 1, ceil(h)::bigint + 1,
                 least(greatest(floor(n * 0.75 - spread), 1), n)::bigint,
                 least(greatest(ceil(n * 0.75 + spread) + 1, 1), n)::bigint];
END
$$;

-- percentile_cont(0.75) of n values from the values at ranks lo and hi
-- (rum.p75_ranks), with its own arithmetic (orderedsetaggs.c):
-- lo + (h - floor(h)) * (hi - lo), to the last bit.
CREATE OR REPLACE FUNCTION rum.p75_from_ranks(n bigint, lo float8, hi float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lo + (0.75::float8 * (n - 1) - floor(0.75::float8 * (n - 1))) * (hi - lo)
$$;

-- {p75, low, high} of vals: p75 is percentile_cont(0.75)'s, low and high the
-- values at ranks j and k (rum.p75_ranks). NULLs are ignored; NULL when vals
-- holds no value. One sort.
CREATE OR REPLACE FUNCTION rum.p75_interval(vals float8[], deff float8 DEFAULT 1)
RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH sorted AS (
        SELECT array_agg(v ORDER BY v) AS a, count(*) AS n
        FROM unnest(vals) AS v WHERE v IS NOT NULL
    ), ranked AS (
        SELECT a, n, rum.p75_ranks(n, deff) AS r FROM sorted WHERE n > 0
    )
    SELECT ARRAY[rum.p75_from_ranks(n, a[r[1]], a[r[2]]), a[r[3]], a[r[4]]]
    FROM ranked
$$;

-- {low, high}: the 95 % interval of subject's p75 - baseline's, each given as
-- {p75, low, high} (rum.p75_interval). Price and Bonett (2002),
-- "Distribution-free confidence intervals for difference and ratio of
-- medians", Journal of Statistical Computation and Simulation 72(2): the
-- variance of each quantile estimated from its interval's width, se = (high -
-- low) / (2 z); delta +- z sqrt(se1^2 + se2^2).
CREATE OR REPLACE FUNCTION rum.p75_difference_interval(subject float8[], baseline float8[])
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    half float8 := sqrt(((subject[3] - subject[2]) / 2) ^ 2
                        + ((baseline[3] - baseline[2]) / 2) ^ 2);
BEGIN
    RETURN ARRAY[subject[1] - baseline[1] - half, subject[1] - baseline[1] + half];
END
$$;

-- {low, high}: Wilson's score interval for x successes out of n, in n / deff
-- independent trials (Wilson 1927, JASA 22:209).
CREATE OR REPLACE FUNCTION rum.wilson_interval(x bigint, n bigint, deff float8 DEFAULT 1)
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    p float8;
    m float8;
    z float8 := rum.z95();
    centre float8;
    half float8;
BEGIN
    IF NOT n > 0 THEN
        RETURN NULL;
    END IF;
    p := x::float8 / n;
    m := n / coalesce(deff, 1);
    centre := (p + z * z / (2 * m)) / (1 + z * z / m);
    half := z / (1 + z * z / m) * sqrt(p * (1 - p) / m + z * z / (4 * m * m));
    RETURN ARRAY[centre - half, centre + half];
END
$$;

-- {low, high}: the 95 % interval of the difference of two percentages, x1/n1
-- - x2/n2, in percentage points: Newcombe's hybrid score interval (Newcombe
-- 1998, Statistics in Medicine 17:873, method 10), the Wilson intervals of
-- both sides combined.
CREATE OR REPLACE FUNCTION rum.newcombe_interval(
    x1 bigint, n1 bigint, x2 bigint, n2 bigint, deff1 float8 DEFAULT 1, deff2 float8 DEFAULT 1)
RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    p1 float8;
    p2 float8;
    d float8;
    w1 float8[];
    w2 float8[];
BEGIN
    IF NOT (n1 > 0 AND n2 > 0) THEN
        RETURN NULL;
    END IF;
    p1 := x1::float8 / n1;
    p2 := x2::float8 / n2;
    d := x1::float8 / n1 - x2::float8 / n2;
    w1 := rum.wilson_interval(x1, n1, deff1);
    w2 := rum.wilson_interval(x2, n2, deff2);
    RETURN ARRAY[100 * (d - sqrt((p1 - w1[1]) ^ 2 + (w2[2] - p2) ^ 2)),
                 100 * (d + sqrt((w1[2] - p1) ^ 2 + (p2 - w2[1]) ^ 2))];
END
$$;

-- The verdict of rum.comparisons: 'too few' under 50 on either side
-- (rum.too_small), else 'better' / 'worse' when the interval excludes 0
-- (better: lower when lower_is_better, else higher), else 'no change'.
CREATE OR REPLACE FUNCTION rum.verdict(
    subject_n bigint, baseline_n bigint, low float8, high float8, lower_is_better boolean)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN rum.too_small(subject_n) OR rum.too_small(baseline_n) THEN 'too few'
        WHEN low IS NULL OR high IS NULL THEN NULL
        WHEN high < 0 THEN CASE WHEN lower_is_better THEN 'better' ELSE 'worse' END
        WHEN low > 0 THEN CASE WHEN lower_is_better THEN 'worse' ELSE 'better' END
        ELSE 'no change' END
$$;
