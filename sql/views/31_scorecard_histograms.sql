-- rum.scorecard_histograms — grain: day x site x channel x utm_campaign x
-- device_class x country x metric x bin.
--
-- How many page views of a rum.scorecard_daily group fell in each bin of a
-- metric (metric: 'lcp', 'inp', 'cls', 'fcp', 'ttfb'); only non-empty bins.
-- A bin holds the values v with bin_lower < v <= bin_upper (the first bin
-- starts at 0 included: bin_lower NULL; the last has no upper bound:
-- bin_upper NULL). Bins are fixed, so counts add up across days and groups,
-- and every CrUX threshold (rum.good_threshold, rum.poor_threshold) is a bin
-- edge: good / needs-improvement / poor shares read from bins are exact. A p75 read from bins (see
-- docs/analyst-guide.md) is off by at most one bin width: LCP and FCP 100 ms
-- up to 10 s (1 s up to 30 s), INP 10 ms up to 1 s (100 ms up to 3 s), TTFB
-- 50 ms up to 5 s (500 ms up to 15 s), CLS 0.01 up to 1 (0.1 up to 3).
DROP VIEW IF EXISTS rum.scorecard_histograms CASCADE;
CREATE VIEW rum.scorecard_histograms AS
SELECT
    day,
    site,
    channel,
    utm_campaign,
    device_class,
    country,
    metric,
    bin,
    binome.metric_bin_lower(metric, bin) AS bin_lower,
    binome.metric_bin_upper(metric, bin) AS bin_upper,
    page_views
FROM (
    -- The arrays unnested in the select list, not in FROM: a function in FROM
    -- stores each call's rows in a tuplestore before they are read; in the
    -- select list they stream (ProjectSet), in the parallel workers too
    -- (measured with bench/views.py). Two unnests in one select list run in
    -- step, as unnest(bins, counts) does. Same in 33_campaign_histograms, 50_release_comparison.
    SELECT r.day, r.site, r.channel, r.utm_campaign, r.device_class, r.country, r.metric,
           unnest(r.bins) AS bin, unnest(r.counts) AS page_views
    FROM binome.scorecard_day_bins r
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
    UNION ALL
    SELECT * FROM binome.scorecard_bins_live
) AS bins;
