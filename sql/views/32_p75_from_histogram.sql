-- rum.p75_from_histogram(bin_lower, bin_upper, page_views) — an aggregate.
--
-- The 75th percentile of page views counted in histogram bins (the rows of
-- rum.scorecard_histograms for one metric), for figures that span several
-- scorecard groups or days: a month, all devices, a channel. It is
-- percentile_cont(0.75)'s formula, interpolating between the values at ranks
-- floor(h) and ceil(h), h = 0.75 (N - 1), with each of them estimated inside
-- its own bin (values taken as spread evenly over it): so the result is off by
-- at most one bin width (docs/analyst-guide.md gives the widths). A value in
-- the last bin, which has no upper bound, is taken as its lower edge.
-- Rows of the same bin may repeat (one per day, device ...): they are added
-- up; summing page_views per bin first keeps the aggregate's state small.
CREATE OR REPLACE FUNCTION rum.p75_from_histogram_add(
    state float8[], bin_lower float8, bin_upper float8, page_views bigint
) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN page_views IS NULL OR page_views <= 0 THEN state
                ELSE state || ARRAY[coalesce(bin_lower, 0), coalesce(bin_upper, 'Infinity'),
                                    page_views::float8] END
$$;

CREATE OR REPLACE FUNCTION rum.p75_from_histogram_final(state float8[]) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    WITH bins AS (
        SELECT state[i] AS lower, state[i + 1] AS upper, sum(state[i + 2]) AS n
        FROM generate_series(1, coalesce(cardinality(state), 0), 3) AS i
        GROUP BY 1, 2
    ), cumulative AS (
        SELECT lower, upper, n,
               sum(n) OVER (ORDER BY lower) - n AS before,
               sum(n) OVER () AS total
        FROM bins
    ), ranks AS (
        SELECT 0.75 * (max(total) - 1) AS h,
               floor(0.75 * (max(total) - 1)) AS first,
               ceil(0.75 * (max(total) - 1)) AS second
        FROM cumulative
    ), estimates AS (
        SELECT r.h, r.first,
            (SELECT CASE WHEN c.upper = 'Infinity' THEN c.lower
                         ELSE c.lower + (r.first - c.before + 0.5) / c.n * (c.upper - c.lower) END
             FROM cumulative c WHERE r.first >= c.before AND r.first < c.before + c.n) AS low,
            (SELECT CASE WHEN c.upper = 'Infinity' THEN c.lower
                         ELSE c.lower + (r.second - c.before + 0.5) / c.n * (c.upper - c.lower) END
             FROM cumulative c WHERE r.second >= c.before AND r.second < c.before + c.n) AS high
        FROM ranks r
    )
    SELECT low + (h - first) * (high - low) FROM estimates
$$;

CREATE OR REPLACE AGGREGATE rum.p75_from_histogram(float8, float8, bigint) (
    SFUNC = rum.p75_from_histogram_add,
    STYPE = float8[],
    FINALFUNC = rum.p75_from_histogram_final,
    INITCOND = '{}'
);
