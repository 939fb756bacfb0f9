-- Refused beacons, minute by minute (issue 24): what a newcomer needs to fix a
-- snippet that sends to a site not registered or from an origin not allowed,
-- read through rum.ingest_rejections. Added to by every collector process with
-- binome.ingest_counts (collector/writer.py), from counters bounded per minute
-- (collector/rejections.py): `site` is the site as sent (at most 64 characters;
-- '(not read)' when the refusal came before the body was read), `origin` the
-- origin refused or the request's Origin ('(none)' without one), and past 50
-- (site, origin) pairs a minute per process both are '(other)'. Kept 7 days
-- (binome.forget_ingest_rejections, run by `binome maintain`). Keyed by site
-- first, as every table (tests/test_db.py).
CREATE TABLE binome.ingest_rejections (
    site    text NOT NULL,
    minute  timestamptz NOT NULL,
    reason  text NOT NULL,
    origin  text NOT NULL,
    refused bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (site, minute, reason, origin)
);
-- The dashboard's banner reads the last hour of every site.
CREATE INDEX ingest_rejections_minute ON binome.ingest_rejections (minute);

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        -- An upsert adding to `refused` (ON CONFLICT ... DO UPDATE reads it);
        -- no DELETE: old rows go through binome.forget_ingest_rejections().
        GRANT SELECT (site, minute, reason, origin, refused), INSERT, UPDATE (refused)
            ON binome.ingest_rejections TO binome_writer;
    END IF;
END
$$;
