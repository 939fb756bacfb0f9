-- rum.release_comparison — grain: site x release.
--
-- How each release of the site performs for real visitors, so IT can show the
-- gain of its work release by release. first_seen / last_seen: the first and
-- last page view received with that release. p75s and cwv_good_pct as in
-- rum.scorecard_daily (CrUX definitions: percentile_cont(0.75) over the page
-- views with the metric; a good experience: rum.cwv_good).
-- conversion_rate: % of the sessions with a page view of this release measured
-- with marketing consent that converted; NULL when no page view of the release
-- had consent. Page views without a release count under '(none)'.
-- too_small: rum.too_small(page_views). *_samples: page views with the metric;
-- cwv_samples / cwv_good: page views with LCP and CLS / with a good experience.
--
-- Counts are summed over days (rollups for closed days, live for the others).
-- A release's p75 spans all its days, so it cannot be summed: the summed
-- histogram (bins ten times finer than rum.scorecard_histograms', kept summed
-- over each release's closed days in binome.release_bins) tells which
-- bin holds the values percentile_cont interpolates between (their ranks:
-- rum.p75_ranks), and an index of binome.page_views
-- reads those values inside that one bin (an index-only scan,
-- sql/migrations/0001_baseline.sql). The result is percentile_cont's, to the last bit.
DROP VIEW IF EXISTS rum.release_comparison CASCADE;
CREATE VIEW rum.release_comparison AS
WITH days AS (
    SELECT r.*
    FROM binome.release_days r
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
    UNION ALL
    SELECT * FROM binome.release_live
), releases AS (
    SELECT
        site,
        release,
        min(first_seen) AS first_seen,
        max(last_seen) AS last_seen,
        sum(page_views)::bigint AS page_views,
        sum(lcp_samples)::bigint AS lcp_samples,
        sum(inp_samples)::bigint AS inp_samples,
        sum(cls_samples)::bigint AS cls_samples,
        sum(cwv_samples)::bigint AS cwv_samples,
        sum(cwv_good)::bigint AS cwv_good,
        sum(sessions)::bigint AS sessions,
        sum(conversions)::bigint AS conversions
    FROM days
    GROUP BY site, release
), bins AS (
    -- Each release's fine histogram over its life (binome.release_bin_arrays).
    SELECT site, release, metric, bin, sum(n)::bigint AS n
    FROM (SELECT site, release, metric, unnest(bins) AS bin, sign * unnest(counts) AS n
          FROM binome.release_bin_arrays) AS b
    GROUP BY site, release, metric, bin
), cumulative AS (
    SELECT
        site, release, metric, bin, n,
        sum(n) OVER (PARTITION BY site, release, metric ORDER BY bin) - n AS before,
        (sum(n) OVER (PARTITION BY site, release, metric))::bigint AS total
    FROM bins
), wanted AS (
    -- The p75's two ranks (1-based, rum.p75_ranks), each found in its bin.
    SELECT c.site, c.release, c.metric, c.total, c.bin, r.which,
           r.rank - c.before - 1 AS offset_in_bin
    FROM cumulative c
    CROSS JOIN LATERAL (SELECT rum.p75_ranks(c.total) AS ranks) AS k
    CROSS JOIN LATERAL (VALUES (1, k.ranks[1]), (2, k.ranks[2])) AS r(which, rank)
    WHERE r.rank > c.before AND r.rank <= c.before + c.n
), valued AS (
    SELECT
        w.site, w.release, w.metric, w.total, w.which,
        CASE w.metric
        WHEN 'lcp' THEN (
            SELECT p.lcp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.release
              AND p.lcp > coalesce(binome.metric_bin_lower('lcp_fine', w.bin), '-Infinity')
              AND p.lcp <= coalesce(binome.metric_bin_upper('lcp_fine', w.bin), 'Infinity')
            ORDER BY p.lcp OFFSET w.offset_in_bin LIMIT 1)
        WHEN 'inp' THEN (
            SELECT p.inp FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.release
              AND p.inp > coalesce(binome.metric_bin_lower('inp_fine', w.bin), '-Infinity')
              AND p.inp <= coalesce(binome.metric_bin_upper('inp_fine', w.bin), 'Infinity')
            ORDER BY p.inp OFFSET w.offset_in_bin LIMIT 1)
        WHEN 'cls' THEN (
            SELECT p.cls FROM binome.page_views p
            WHERE p.site = w.site AND coalesce(p.release, '(none)') = w.release
              AND p.cls > coalesce(binome.metric_bin_lower('cls_fine', w.bin), '-Infinity')
              AND p.cls <= coalesce(binome.metric_bin_upper('cls_fine', w.bin), 'Infinity')
            ORDER BY p.cls OFFSET w.offset_in_bin LIMIT 1)
        END AS value
    FROM wanted w
), p75 AS (
    SELECT
        site, release,
        max(CASE WHEN metric = 'lcp' THEN value END) AS lcp_p75,
        max(CASE WHEN metric = 'inp' THEN value END) AS inp_p75,
        max(CASE WHEN metric = 'cls' THEN value END) AS cls_p75
    FROM (
        SELECT
            site, release, metric,
            rum.p75_from_ranks(min(total), min(value) FILTER (WHERE which = 1),
                               min(value) FILTER (WHERE which = 2)) AS value
        FROM valued
        GROUP BY site, release, metric
    ) AS per_metric
    GROUP BY site, release
)
SELECT
    r.site,
    r.release,
    r.first_seen,
    r.last_seen,
    r.page_views,
    p.lcp_p75,
    p.inp_p75,
    p.cls_p75,
    100.0 * r.cwv_good / nullif(r.cwv_samples, 0) AS cwv_good_pct,
    100.0 * r.conversions / nullif(r.sessions, 0) AS conversion_rate,
    rum.too_small(r.page_views) AS too_small,
    r.lcp_samples,
    r.inp_samples,
    r.cls_samples,
    r.sessions,
    r.conversions,
    r.cwv_samples,
    r.cwv_good
FROM releases r
LEFT JOIN p75 p ON p.site = r.site AND p.release = r.release;
