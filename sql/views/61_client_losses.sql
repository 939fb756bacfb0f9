-- rum.client_losses — grain: day x site x reason.
--
-- What the snippet could not send (issue 22), as its later beacons reported
-- it (docs/beacon-format.md, "lost"): `refused` (sendBeacon refused and the
-- fetch keepalive fallback failed), `oversize` (over the keepalive budget, not
-- sent). rum.ingest_health counts what reached the collector; this view what
-- never did, as far as the browsers could tell. Its day is that of the page
-- view whose beacon carried the counts.
DROP VIEW IF EXISTS rum.client_losses CASCADE;
CREATE VIEW rum.client_losses AS
SELECT b.day, b.site, l.key AS reason, sum(l.value::bigint) AS lost
FROM binome.beacons b
CROSS JOIN LATERAL jsonb_each_text(b.client_losses) AS l
WHERE b.client_losses IS NOT NULL
GROUP BY b.day, b.site, l.key;
