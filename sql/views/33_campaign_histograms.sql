-- rum.campaign_histograms — grain: day x site x channel x utm_campaign x metric x bin.
--
-- rum.scorecard_histograms summed over device classes and countries: how many
-- page views of a day, site, channel and campaign fell in each bin of a
-- metric (same bins, same bin_lower / bin_upper, only non-empty bins). For
-- figures that do not split by device or country (a campaign's month, a
-- site's trend), the same answer from several times fewer rows: closed days
-- are read from binome.campaign_day_bins (sql/functions/40_rollups.sql), written with
-- the other rollups; live days are summed from the live bins.
DROP VIEW IF EXISTS rum.campaign_histograms CASCADE;
CREATE VIEW rum.campaign_histograms AS
SELECT
    day,
    site,
    channel,
    utm_campaign,
    metric,
    bin,
    binome.metric_bin_lower(metric, bin) AS bin_lower,
    binome.metric_bin_upper(metric, bin) AS bin_upper,
    page_views
FROM (
    SELECT r.day, r.site, r.channel, r.utm_campaign, r.metric,
           unnest(r.bins) AS bin, unnest(r.counts) AS page_views
    FROM binome.campaign_day_bins r
    WHERE NOT EXISTS (
        SELECT 1 FROM binome.rollup_excluded x WHERE x.site = r.site AND x.day = r.day)
    UNION ALL
    SELECT day, site, channel, utm_campaign, metric, bin, sum(page_views)::bigint
    FROM binome.scorecard_bins_live
    GROUP BY day, site, channel, utm_campaign, metric, bin
) AS bins;
