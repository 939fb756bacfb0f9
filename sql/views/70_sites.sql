-- rum.sites — grain: one row per registered site.
--
-- The sites `binome site add` registered, with or without page views yet: the
-- dashboard's site filter lists them. origins: the page origins the site
-- accepts beacons from (empty: any origin); currency: the ISO 4217 code its
-- revenue is in (`binome site add NAME --currency CODE`; EUR by default).
DROP VIEW IF EXISTS rum.sites CASCADE;
CREATE VIEW rum.sites AS
SELECT
    s.site,
    s.created_at,
    s.currency,
    coalesce(array_agg(o.origin ORDER BY o.origin) FILTER (WHERE o.origin IS NOT NULL),
             '{}') AS origins
FROM binome.sites s
LEFT JOIN binome.site_origins o USING (site)
GROUP BY s.site, s.created_at, s.currency;
