-- binome.release_live, binome.release_bins_live — internal, grain:
-- day x site x release (x metric x bin).
--
-- rum.release_comparison's counts for the page views computed live
-- (binome.live_page_views), per day, in the shape of the rollups `binome
-- maintain` fills from them (binome.release_days, release_day_bins). sessions
-- counts each session once per release, on the day of its first page view with
-- that release measured with marketing consent; conversions: those of them
-- that converted. Page views without a release count under '(none)'.
DROP VIEW IF EXISTS binome.release_live CASCADE;
CREATE VIEW binome.release_live AS
SELECT
    day,
    site,
    coalesce(release, '(none)') AS release,
    min(received_at) AS first_seen,
    max(received_at) AS last_seen,
    count(*) AS page_views,
    count(lcp) AS lcp_samples,
    count(inp) AS inp_samples,
    count(cls) AS cls_samples,
    count(*) FILTER (WHERE lcp IS NOT NULL AND cls IS NOT NULL) AS cwv_samples,
    count(*) FILTER (WHERE rum.cwv_good(lcp, inp, cls)) AS cwv_good,
    count(*) FILTER (WHERE first_in_release) AS sessions,
    count(*) FILTER (WHERE first_in_release AND session_converted) AS conversions
FROM binome.live_page_views
GROUP BY day, site, coalesce(release, '(none)');

-- Bins ten times finer than the scorecard's ('lcp_fine' ...): they only serve
-- to find a release's exact p75 (sql/views/50_release_comparison.sql).
CREATE VIEW binome.release_bins_live AS
SELECT day, site, coalesce(release, '(none)') AS release, 'lcp'::text AS metric,
       binome.metric_bin('lcp_fine', lcp) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE lcp IS NOT NULL
GROUP BY day, site, coalesce(release, '(none)'), binome.metric_bin('lcp_fine', lcp)
UNION ALL
SELECT day, site, coalesce(release, '(none)') AS release, 'inp'::text AS metric,
       binome.metric_bin('inp_fine', inp) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE inp IS NOT NULL
GROUP BY day, site, coalesce(release, '(none)'), binome.metric_bin('inp_fine', inp)
UNION ALL
SELECT day, site, coalesce(release, '(none)') AS release, 'cls'::text AS metric,
       binome.metric_bin('cls_fine', cls) AS bin, count(*) AS page_views
FROM binome.live_page_views WHERE cls IS NOT NULL
GROUP BY day, site, coalesce(release, '(none)'), binome.metric_bin('cls_fine', cls);

-- binome.release_bin_arrays — internal, grain: site x release x metric x part.
-- The parts whose fine bins add up to each release's histogram over its whole
-- life, as rum.release_comparison and rum.comparisons read it: `sign` times
-- `counts` in `bins`. The release's bins over its closed days, summed once as
-- they were written (binome.release_bins, sql/functions/45_rollup_sums.sql);
-- less (sign -1) the closed days the views must not read from rollups (dirty
-- days, computed live); plus the live days read from their snapshot and the
-- live bins.
CREATE VIEW binome.release_bin_arrays AS
SELECT r.site, r.release, r.metric, r.bins, r.counts, 1 AS sign
FROM binome.release_bins r
UNION ALL
SELECT r.site, r.release, r.metric, r.bins, r.counts, -1
FROM binome.release_day_bins r
JOIN binome.rollup_state s ON s.site = r.site AND r.day <= s.rolled_through
WHERE EXISTS (
    SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
UNION ALL
SELECT r.site, r.release, r.metric, r.bins, r.counts, 1
FROM binome.release_day_bins r
JOIN binome.rollup_state s ON s.site = r.site AND r.day > s.rolled_through
WHERE NOT EXISTS (
    SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
UNION ALL
SELECT site, release, metric, array_agg(bin), array_agg(page_views), 1
FROM binome.release_bins_live
GROUP BY site, release, metric;
