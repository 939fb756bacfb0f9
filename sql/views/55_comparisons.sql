-- rum.comparisons — grain: site x kind x subject x metric (contract section 7,
-- issue 21).
--
-- Each difference with its 95 % confidence interval and a verdict, so a gain
-- is shown with its uncertainty, never as a bare number. Kinds:
--   release     each release (page views without one excluded) against the
--               release first seen just before it on the site, each over its
--               whole life (rum.release_comparison's page views and values);
--   ab_variant  each value of dims.ab_variant against 'A', else 'control',
--               over the 28 days ending today (UTC);
--   period      the 7 complete UTC days before today against the 7 before
--               them; subject and baseline are their first days.
-- Values as in rum.release_comparison (section 6's definitions): exact p75s
-- (percentile_cont(0.75)), cwv_good_pct over the page views with LCP and CLS,
-- conversion_rate over the sessions with a page view of the side measured with
-- marketing consent (a session converts when any of its page views has an
-- event). subject_n / baseline_n: page views with the metric, sessions for
-- conversion_rate. Intervals (sql/views/02_statistics.sql, docs/analyst-guide.md):
-- p75s by order statistics combined by Price and Bonett, percentages by
-- Newcombe, both widened by the design effect of sessions (rum.design_effect),
-- whose sums over sessions are taken per day.
--
-- Read from rollups, as rum.release_comparison: each side's counts are its
-- days' rows (binome.comparison_days for closed days and snapshots,
-- binome.comparison_live for the rest); an order statistic (the p75's ranks
-- and the interval's, rum.p75_ranks) is found in the side's summed fine
-- histogram, which tells the bin holding that rank, and read in an index of
-- binome.page_views inside that one bin (sql/migrations/0001_baseline.sql,
-- 0004_comparison_rollups.sql). The result is the order statistics of the
-- side's page views sorted, exactly.

-- The side of rum.comparisons a day's rollup row of (kind, side) counts in,
-- today being `today`; NULL when it is outside the kind's window: a release
-- over its whole life (not '(none)', the page views without one), a variant
-- over the 28 days ending today, a day of the two weeks before today in the
-- week named by its first day.
-- STABLE: a date's text follows DateStyle.
CREATE OR REPLACE FUNCTION binome.comparison_side(kind text, side text, day date, today date)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN kind = 'release' AND side <> '(none)' THEN side
        WHEN kind = 'ab_variant' AND day > today - 28 THEN side
        WHEN kind = 'period' AND day >= today - 7 AND day < today THEN (today - 7)::text
        WHEN kind = 'period' AND day >= today - 14 AND day < today - 7 THEN (today - 14)::text
    END
$$;

-- Fine histograms summed as dense arrays (element b: the count of bin b,
-- from the lowest bin to the highest):
-- summing a side's days' sparse arrays row by row in SQL took one executor
-- row per bin and day, and a sort of them all, most of the view's time.
-- PL/pgSQL adds into the aggregate's state in place.
-- sign: 1 to add the counts, -1 to take them away.
CREATE OR REPLACE FUNCTION binome.bins_add(state bigint[], bins smallint[], counts bigint[],
                                           sign integer)
RETURNS bigint[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    FOR i IN 1 .. coalesce(cardinality(bins), 0) LOOP
        state[bins[i]] := coalesce(state[bins[i]], 0) + sign * counts[i];
    END LOOP;
    RETURN state;
END
$$;
CREATE OR REPLACE AGGREGATE binome.bins_sum(smallint[], bigint[], integer) (
    SFUNC = binome.bins_add, STYPE = bigint[], INITCOND = '{}', PARALLEL = SAFE);

-- The bin holding each of ranks (1-based, ascending order not needed) in the
-- dense histogram counts, and the count of the bins before it: (i, the rank's
-- place in ranks; rank; bin; before).
CREATE OR REPLACE FUNCTION binome.bins_at_ranks(counts bigint[], ranks bigint[])
RETURNS TABLE (i integer, rank bigint, bin smallint, before bigint)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    last_rank bigint := (SELECT max(r) FROM unnest(ranks) AS r);
    cum bigint := 0;
    n bigint;
BEGIN
    IF coalesce(cardinality(counts), 0) = 0 THEN
        RETURN;
    END IF;
    -- The array's bounds are its lowest and highest bins (an element assigned
    -- in an empty array becomes its first).
    FOR b IN array_lower(counts, 1) .. array_upper(counts, 1) LOOP
        n := coalesce(counts[b], 0);
        IF n > 0 THEN
            FOR k IN 1 .. cardinality(ranks) LOOP
                IF ranks[k] > cum AND ranks[k] <= cum + n THEN
                    i := k; rank := ranks[k]; bin := b; before := cum;
                    RETURN NEXT;
                END IF;
            END LOOP;
            cum := cum + n;
            EXIT WHEN cum >= last_rank;
        END IF;
    END LOOP;
END
$$;

DROP VIEW IF EXISTS rum.comparisons CASCADE;
CREATE VIEW rum.comparisons AS
WITH today AS (
    SELECT (now() AT TIME ZONE 'UTC')::date AS today
), days AS MATERIALIZED (
    -- Every side's counts per day: a day is read from its rollup or live,
    -- exactly one of the two (binome.rollup_excluded, binome.live_days).
    SELECT c.*
    FROM binome.comparison_days c
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = c.site AND x.day = c.day)
    UNION ALL
    SELECT * FROM binome.comparison_live
), sides AS (
    -- Each side of rum.comparisons, its days summed; first_day / end_day:
    -- the days whose page views hold its values.
    SELECT d.site, d.kind, s.side,
           min(d.first_seen) AS first_seen,
           CASE d.kind WHEN 'ab_variant' THEN t.today - 27
                       WHEN 'period' THEN s.side::date END AS first_day,
           CASE d.kind WHEN 'period' THEN s.side::date + 7 END AS end_day,
           sum(d.lcp_samples)::bigint AS lcp_n,
           sum(d.inp_samples)::bigint AS inp_n,
           sum(d.cls_samples)::bigint AS cls_n,
           sum(d.cwv_samples)::bigint AS cwv_samples,
           sum(d.cwv_good)::bigint AS cwv_good,
           rum.design_effect(sum(d.lcp_samples)::bigint, sum(d.lcp_squares)::bigint) AS deff_lcp,
           rum.design_effect(sum(d.inp_samples)::bigint, sum(d.inp_squares)::bigint) AS deff_inp,
           rum.design_effect(sum(d.cls_samples)::bigint, sum(d.cls_squares)::bigint) AS deff_cls,
           rum.design_effect(sum(d.cwv_samples)::bigint, sum(d.cwv_squares)::bigint) AS deff_cwv,
           sum(d.sessions)::bigint AS sessions,
           sum(d.conversions)::bigint AS conversions
    FROM days d
    CROSS JOIN today t
    CROSS JOIN LATERAL (SELECT binome.comparison_side(d.kind, d.side, d.day, t.today)) AS s(side)
    WHERE s.side IS NOT NULL
    GROUP BY d.site, d.kind, s.side, t.today
), period_releases AS (
    -- The releases (and '(none)') of each week's page views: the index of a
    -- week's values is the releases' (page_views_release_*).
    SELECT d.site, s.side, array_agg(DISTINCT d.side) AS releases
    FROM days d
    CROSS JOIN today t
    CROSS JOIN LATERAL (SELECT binome.comparison_side('period', '', d.day, t.today)) AS s(side)
    WHERE d.kind = 'release' AND s.side IS NOT NULL
    GROUP BY d.site, s.side
), ranked AS MATERIALIZED (
    -- The four ranks each side and metric reads (p75's two, the interval's
    -- two), and a number for each side and metric (part).
    SELECT row_number() OVER () AS part, s.site, s.kind, s.side, s.first_day, s.end_day,
           m.metric, m.n, rum.p75_ranks(m.n, m.deff) AS ranks
    FROM sides s
    CROSS JOIN LATERAL (VALUES ('lcp'::text, s.lcp_n, s.deff_lcp), ('inp', s.inp_n, s.deff_inp),
                               ('cls', s.cls_n, s.deff_cls)) AS m(metric, n, deff)
    WHERE m.n > 0
), bins AS (
    -- Each side's fine histogram, dense (binome.bins_sum): a release's over
    -- its life, summed as rum.release_comparison's; a variant's or week's
    -- summed over its days, from rollups or live.
    SELECT part, binome.bins_sum(bins, counts, sign) AS counts
    FROM (
        SELECT r.part, b.bins, b.counts, b.sign
        FROM binome.release_bin_arrays b
        JOIN ranked r ON r.site = b.site AND r.kind = 'release' AND r.side = b.release
                     AND r.metric = b.metric
        UNION ALL
        SELECT r.part, c.bins, c.counts, 1
        FROM binome.comparison_day_bins c
        CROSS JOIN today t
        JOIN ranked r ON r.site = c.site AND r.kind = c.kind AND r.metric = c.metric
                     AND r.side = binome.comparison_side(c.kind, c.side, c.day, t.today)
        WHERE NOT EXISTS (
            SELECT 1 FROM binome.rollup_excluded x WHERE x.site = c.site AND x.day = c.day)
        UNION ALL
        SELECT r.part, ARRAY[l.bin], ARRAY[l.page_views], 1
        FROM binome.comparison_bins_live l
        CROSS JOIN today t
        JOIN ranked r ON r.site = l.site AND r.kind = l.kind AND r.metric = l.metric
                     AND r.side = binome.comparison_side(l.kind, l.side, l.day, t.today)
    ) AS summed
    GROUP BY part
), located AS (
    -- Each of the four ranks, in the bin that holds it.
    SELECT r.site, r.kind, r.side, r.metric, r.first_day, r.end_day, k.i, k.rank, k.bin,
           k.before
    FROM ranked r
    JOIN bins b USING (part)
    CROSS JOIN LATERAL binome.bins_at_ranks(b.counts, r.ranks) AS k
), wanted AS (
    -- Each bin to be read once, however many of the ranks it holds, up to the
    -- highest of them (upto: its place in the bin).
    SELECT l.site, l.kind, l.side, l.metric, l.bin, l.first_day, l.end_day, p.releases,
           max(l.rank - l.before) AS upto
    FROM located l
    LEFT JOIN period_releases p ON l.kind = 'period' AND p.site = l.site AND p.side = l.side
    GROUP BY l.site, l.kind, l.side, l.metric, l.bin, l.first_day, l.end_day, p.releases
), bin_values AS MATERIALIZED (
    -- The bin's values, sorted, up to the highest rank wanted, from the index
    -- of the side's page views: a release's (site, release, value) and a
    -- variant's (site, variant, value), in order, so only that many are read;
    -- a week's through its releases, on its days, sorted.
    SELECT w.*,
        CASE w.kind || '.' || w.metric
        WHEN 'release.lcp' THEN ARRAY(
            SELECT p.lcp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.side
              AND p.lcp > coalesce(binome.metric_bin_lower('lcp_fine', w.bin), '-Infinity')
              AND p.lcp <= coalesce(binome.metric_bin_upper('lcp_fine', w.bin), 'Infinity')
            ORDER BY p.lcp LIMIT w.upto)
        WHEN 'release.inp' THEN ARRAY(
            SELECT p.inp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.side
              AND p.inp > coalesce(binome.metric_bin_lower('inp_fine', w.bin), '-Infinity')
              AND p.inp <= coalesce(binome.metric_bin_upper('inp_fine', w.bin), 'Infinity')
            ORDER BY p.inp LIMIT w.upto)
        WHEN 'release.cls' THEN ARRAY(
            SELECT p.cls FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.side
              AND p.cls > coalesce(binome.metric_bin_lower('cls_fine', w.bin), '-Infinity')
              AND p.cls <= coalesce(binome.metric_bin_upper('cls_fine', w.bin), 'Infinity')
            ORDER BY p.cls LIMIT w.upto)
        WHEN 'period.lcp' THEN ARRAY(
            SELECT p.lcp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = ANY (w.releases)
              AND p.lcp > coalesce(binome.metric_bin_lower('lcp_fine', w.bin), '-Infinity')
              AND p.lcp <= coalesce(binome.metric_bin_upper('lcp_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day AND p.day < w.end_day
            ORDER BY p.lcp LIMIT w.upto)
        WHEN 'period.inp' THEN ARRAY(
            SELECT p.inp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = ANY (w.releases)
              AND p.inp > coalesce(binome.metric_bin_lower('inp_fine', w.bin), '-Infinity')
              AND p.inp <= coalesce(binome.metric_bin_upper('inp_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day AND p.day < w.end_day
            ORDER BY p.inp LIMIT w.upto)
        WHEN 'period.cls' THEN ARRAY(
            SELECT p.cls FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = ANY (w.releases)
              AND p.cls > coalesce(binome.metric_bin_lower('cls_fine', w.bin), '-Infinity')
              AND p.cls <= coalesce(binome.metric_bin_upper('cls_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day AND p.day < w.end_day
            ORDER BY p.cls LIMIT w.upto)
        WHEN 'ab_variant.lcp' THEN ARRAY(
            SELECT p.lcp FROM binome.page_views p
            WHERE p.site = w.site AND p.dims ? 'ab_variant'
              AND (p.dims ->> 'ab_variant') COLLATE "C" = w.side
              AND p.lcp > coalesce(binome.metric_bin_lower('lcp_fine', w.bin), '-Infinity')
              AND p.lcp <= coalesce(binome.metric_bin_upper('lcp_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day
            ORDER BY p.lcp LIMIT w.upto)
        WHEN 'ab_variant.inp' THEN ARRAY(
            SELECT p.inp FROM binome.page_views p
            WHERE p.site = w.site AND p.dims ? 'ab_variant'
              AND (p.dims ->> 'ab_variant') COLLATE "C" = w.side
              AND p.inp > coalesce(binome.metric_bin_lower('inp_fine', w.bin), '-Infinity')
              AND p.inp <= coalesce(binome.metric_bin_upper('inp_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day
            ORDER BY p.inp LIMIT w.upto)
        WHEN 'ab_variant.cls' THEN ARRAY(
            SELECT p.cls FROM binome.page_views p
            WHERE p.site = w.site AND p.dims ? 'ab_variant'
              AND (p.dims ->> 'ab_variant') COLLATE "C" = w.side
              AND p.cls > coalesce(binome.metric_bin_lower('cls_fine', w.bin), '-Infinity')
              AND p.cls <= coalesce(binome.metric_bin_upper('cls_fine', w.bin), 'Infinity')
              AND p.day >= w.first_day
            ORDER BY p.cls LIMIT w.upto)
        END AS vals
    FROM wanted w
), at_ranks AS (
    -- The value at each rank: its place in its bin, after the bins before.
    SELECT l.site, l.kind, l.side, l.metric, l.i, b.vals[l.rank - l.before] AS value
    FROM located l
    JOIN bin_values b USING (site, kind, side, metric, bin)
), intervals AS (
    -- {p75, low, high}, as rum.p75_interval gives them from the sorted values.
    SELECT r.site, r.kind, r.side, r.metric,
           ARRAY[rum.p75_from_ranks(r.n, min(a.value) FILTER (WHERE a.i = 1),
                                    min(a.value) FILTER (WHERE a.i = 2)),
                 min(a.value) FILTER (WHERE a.i = 3),
                 min(a.value) FILTER (WHERE a.i = 4)] AS interval
    FROM ranked r
    JOIN at_ranks a USING (site, kind, side, metric)
    GROUP BY r.site, r.kind, r.side, r.metric, r.n
), valued AS (
    SELECT s.site, s.kind, s.side, s.first_seen,
           l.interval AS lcp, i.interval AS inp, c.interval AS cls,
           s.lcp_n, s.inp_n, s.cls_n,
           s.cwv_samples, s.cwv_good, s.deff_cwv, s.sessions, s.conversions
    FROM sides s
    LEFT JOIN intervals l ON l.site = s.site AND l.kind = s.kind AND l.side = s.side
                         AND l.metric = 'lcp'
    LEFT JOIN intervals i ON i.site = s.site AND i.kind = s.kind AND i.side = s.side
                         AND i.metric = 'inp'
    LEFT JOIN intervals c ON c.site = s.site AND c.kind = s.kind AND c.side = s.side
                         AND c.metric = 'cls'
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
