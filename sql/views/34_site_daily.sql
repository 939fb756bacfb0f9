-- rum.site_daily — grain: day x site.
--
-- A site's totals for a day, every channel, campaign, device and country
-- together: page views, and those measured with marketing consent (outside
-- the '(no consent)' group of rum.scorecard_daily). The same figures as
-- rum.scorecard_daily's groups summed, from one row per rolled-up day
-- (binome.site_days, sql/functions/45_rollup_sums.sql) instead of thousands: a share of
-- consent over a site's whole history costs a row per day. Days computed
-- live (today, dirty days, stale snapshots) are counted from their page
-- views, as in rum.scorecard_daily.
DROP VIEW IF EXISTS rum.site_daily CASCADE;
CREATE VIEW rum.site_daily AS
SELECT d.day, d.site, d.page_views, d.marketing_page_views
FROM binome.site_days d
WHERE NOT EXISTS (
    SELECT 1 FROM binome.rollup_excluded x WHERE x.site = d.site AND x.day = d.day)
UNION ALL
SELECT day, site, count(*) AS page_views,
       count(*) FILTER (WHERE group_channel <> '(no consent)') AS marketing_page_views
FROM binome.live_page_views
GROUP BY day, site;
