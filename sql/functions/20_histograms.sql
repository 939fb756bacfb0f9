-- Histogram bins: the fixed edges of each metric's bins and the bin of a value.
-- Rollups keep histograms whose counts add up across groups and days, so that
-- p75s and good / poor shares of any period come from them (rum.scorecard_daily,
-- rum.release_comparison; docs/analyst-guide.md).
--
-- Bin k holds (edge[k-1], edge[k]], bin 1 holds [0, edge[1]] and the last bin
-- everything above the last edge. Right-closed bins because CrUX's "good" is
-- `<=` its threshold: every CrUX threshold (LCP 2500/4000, INP 200/500, CLS
-- 0.1/0.25, FCP 1800/3000, TTFB 800/1800) is an edge, so good /
-- needs-improvement / poor counts are exact sums of bins.

-- The edges, from their steps: the one definition of the bins. Widths
-- (docs/analyst-guide.md): LCP, FCP 100 ms to 10 s then 1 s to 30 s; INP 10 ms
-- to 1 s then 100 ms to 3 s; TTFB 50 ms to 5 s then 500 ms to 15 s; CLS 0.01 to
-- 1 then 0.1 to 3. Built from numeric so that 0.1 is the same double as the
-- literal in `cls <= 0.1`.
CREATE OR REPLACE FUNCTION binome.metric_bin_edges_from_steps(metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(e.edge::float8 ORDER BY e.edge)
    FROM (VALUES
        ('lcp',  100::numeric, 10000::numeric, 1000::numeric, 30000::numeric),
        ('fcp',  100, 10000, 1000, 30000),
        ('inp',  10, 1000, 100, 3000),
        ('ttfb', 50, 5000, 500, 15000),
        ('cls',  0.01, 1, 0.1, 3),
        -- Ten times finer, for the exact p75 of a release (rum.release_comparison):
        -- the values it reads inside one bin are ten times fewer.
        ('lcp_fine', 10, 10000, 100, 30000),
        ('inp_fine', 2, 1000, 20, 3000),
        ('cls_fine', 0.001, 1, 0.01, 3)
    ) AS s(name, fine_step, fine_to, coarse_step, coarse_to)
    CROSS JOIN LATERAL (
        SELECT generate_series(s.fine_step, s.fine_to, s.fine_step) AS edge
        UNION ALL
        SELECT generate_series(s.fine_to + s.coarse_step, s.coarse_to, s.coarse_step)
    ) AS e
    WHERE s.name = metric
$$;

-- binome.metric_bin_edges and binome.metric_bin_neg_edges (the edges negated
-- and reversed, for width_bucket): the same doubles as array literals, written
-- from the steps above at every migrate (float8's text output gives them back
-- exactly). The planner folds an IMMUTABLE call with a constant metric at every
-- call site; building the edges from steps there made rum.release_comparison
-- slow to plan, a literal does not. PL/pgSQL because its body is parsed once
-- per session, where a SQL function's would be inlined, all eight literals with
-- it, at every call site.
DO $$
DECLARE
    metrics text[] := ARRAY['lcp', 'fcp', 'inp', 'ttfb', 'cls', 'lcp_fine', 'inp_fine',
                            'cls_fine'];
    edges text;
    neg_edges text;
BEGIN
    SELECT string_agg(format('WHEN %L THEN %L::float8[]', m,
                             binome.metric_bin_edges_from_steps(m)), ' '),
           string_agg(format('WHEN %L THEN %L::float8[]', m,
                             (SELECT array_agg(-e ORDER BY -e)
                              FROM unnest(binome.metric_bin_edges_from_steps(m)) AS e)), ' ')
    INTO edges, neg_edges
    FROM unnest(metrics) AS m;
    EXECUTE format($f$CREATE OR REPLACE FUNCTION binome.metric_bin_edges(metric text)
        RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS %L$f$,
        'BEGIN RETURN CASE metric ' || edges || ' END; END');
    EXECUTE format($f$CREATE OR REPLACE FUNCTION binome.metric_bin_neg_edges(metric text)
        RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS %L$f$,
        'BEGIN RETURN CASE metric ' || neg_edges || ' END; END');
END
$$;

-- The bin (1-based) of a value; NULL for NULL. width_bucket counts thresholds
-- <= its operand, and a right-closed bin needs the count of edges < value
-- (= n - count(-edge <= -value)). Inlined by the planner, the edge arrays
-- folded to constants.
CREATE OR REPLACE FUNCTION binome.metric_bin(metric text, value float8) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (1 + cardinality(binome.metric_bin_neg_edges(metric))
              - width_bucket(-value, binome.metric_bin_neg_edges(metric)))::smallint
$$;

-- The edges of a metric named at run time (a column): each branch calls the
-- IMMUTABLE function with a constant, so the planner folds it once.
CREATE OR REPLACE FUNCTION binome.metric_edges(metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE metric
        WHEN 'lcp' THEN binome.metric_bin_edges('lcp')
        WHEN 'inp' THEN binome.metric_bin_edges('inp')
        WHEN 'cls' THEN binome.metric_bin_edges('cls')
        WHEN 'fcp' THEN binome.metric_bin_edges('fcp')
        WHEN 'ttfb' THEN binome.metric_bin_edges('ttfb')
        WHEN 'lcp_fine' THEN binome.metric_bin_edges('lcp_fine')
        WHEN 'inp_fine' THEN binome.metric_bin_edges('inp_fine')
        WHEN 'cls_fine' THEN binome.metric_bin_edges('cls_fine')
    END
$$;

-- Bounds of a bin: lower exclusive (NULL for the first bin, which starts at
-- 0 inclusive), upper inclusive (NULL for the last bin, which has none).
CREATE OR REPLACE FUNCTION binome.metric_bin_lower(metric text, bin smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (binome.metric_edges(metric))[bin - 1]
$$;
CREATE OR REPLACE FUNCTION binome.metric_bin_upper(metric text, bin smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (binome.metric_edges(metric))[bin]
$$;
