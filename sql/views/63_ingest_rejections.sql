-- rum.ingest_rejections — grain: minute x site as sent x origin x reason.
--
-- Beacons the collectors refused (issue 24), so a snippet that sends to a site
-- not registered or from an origin not allowed explains itself: `reason` is the
-- error code of the answer (docs/beacon-format.md, "Routes": unknown_site,
-- origin_not_allowed, invalid_beacon, rate_limited ...; automated traffic,
-- answered 204, is not here but in rum.ingest_health); `site` the site name the
-- beacon sent, registered or not ('(not read)' when the refusal came before the
-- body was read: 413, 415, 429 rate_limited, 400 malformed); `origin` the origin
-- refused for origin_not_allowed, else the request's Origin header ('(none)'
-- without one), at most 100 characters. Bounded: past 50 (site, origin) pairs
-- a minute in a collector process, site and origin read '(other)'. Kept 7 days.
DROP VIEW IF EXISTS rum.ingest_rejections CASCADE;
CREATE VIEW rum.ingest_rejections AS
SELECT minute, site, origin, reason, refused
FROM binome.ingest_rejections;
