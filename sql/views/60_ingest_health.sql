-- rum.ingest_health — grain: minute x site.
--
-- What the collectors did, minute by minute (added to by every collector
-- process): received = every POST /beacon; accepted = answered 204; rejected =
-- answered 4xx/503 (beacons naming no registered site count under
-- '(unknown)'); rows_written = beacon rows inserted into PostgreSQL (resends
-- of an already stored beacon are not rows written).
DROP VIEW IF EXISTS rum.ingest_health CASCADE;
CREATE VIEW rum.ingest_health AS
SELECT minute, site, received, accepted, rejected, rows_written
FROM binome.ingest_counts;
