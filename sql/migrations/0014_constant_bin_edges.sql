-- 0014: the histogram edges as constants, cheap for the planner to fold.
--
-- Why: binome.metric_bin_edges built a metric's edges from its steps
-- (generate_series over numeric, a sort, an array_agg: up to 1,200 edges for
-- the fine bins) and binome.metric_bin_neg_edges sorted them again. Both are
-- IMMUTABLE, so the planner runs them at every call site of every query, to
-- fold them into constants: about 10 ms a call for the fine bins. The live
-- part of rum.release_comparison calls them a dozen times, and the view took
-- 100-150 ms to plan whatever the data (bench/views.py), which a client
-- sending plain queries (psql) pays at every query.
--
-- The functions now return array literals, one per metric, written here from
-- the step definitions of 0002 (renamed binome.metric_bin_edges_from_steps,
-- which tests/test_rollups.py compares them with): the same doubles, as
-- float8's text output gives them back exactly. In PL/pgSQL, whose body is
-- parsed once per session: a SQL function is inlined, its body parsed again
-- at every call site, all eight literals with it. Still IMMUTABLE, so a call
-- with a constant metric is still folded into a constant array, and
-- binome.metric_bin still inlines into a width_bucket over it. Planning
-- rum.release_comparison went from 0.11-0.18 s to 14 ms. A metric added to the
-- steps is added to the literals by running this block again in its migration.

-- 0002's function, its steps the one definition of the edges; the new one
-- below takes its name (0002's metric_bin_neg_edges and metric_edges call it
-- by name; the views, which hold functions by oid, are re-created after the
-- migrations).
ALTER FUNCTION binome.metric_bin_edges(text) RENAME TO metric_bin_edges_from_steps;

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
