-- 0001: storage tables. Private schema `binome`; analysts read the views of
-- schema `rum` (sql/views/). Once released, never edit this file: add 0002.
--
-- Every primary key and unique constraint starts with `site`, so the schema can
-- be distributed by site (Citus) when one machine is not enough.

CREATE SCHEMA IF NOT EXISTS rum;

CREATE TABLE binome.sites (
    site       text PRIMARY KEY CHECK (site ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A site without origins accepts beacons from any origin (CONTRACT section 2).
CREATE TABLE binome.site_origins (
    site   text NOT NULL REFERENCES binome.sites ON DELETE CASCADE,
    origin text NOT NULL,
    PRIMARY KEY (site, origin)
);

-- One row per accepted beacon, already enriched and scrubbed (collector/enrich.py):
-- no query string but the utm_* values, no referrer but its origin, no IP.
--
-- Partitioned by `day`, the UTC day of the page view's start (t0) when the
-- client's clock is within a window of the receive time, else the receive day
-- (collector/enrich.py: page_view_day). A resent beacon carries the same t0, so
-- it lands in the same partition and the primary key refuses it; the writer
-- also looks two days either side for the rare resend whose day differs
-- (no t0 and a resend across midnight), see collector/writer.py.
CREATE TABLE binome.beacons (
    site          text NOT NULL,
    day           date NOT NULL,
    pv            text NOT NULL,
    seq           integer NOT NULL,
    sid           text,                 -- NULL: the page view is its own session
    received_at   timestamptz NOT NULL, -- when the collector received it, not when written
    t0            timestamptz,          -- page view start, client clock
    consent       text NOT NULL CHECK (consent IN ('performance', 'marketing')),
    path          text NOT NULL,
    utm_source    text,
    utm_medium    text,
    utm_campaign  text,
    utm_term      text,
    utm_content   text,
    ref_origin    text,
    channel       text,
    release       text,
    dims          jsonb,
    device_class  text,
    browser       text,
    os            text,
    country       text,
    device        jsonb,
    nav           jsonb,
    lcp           double precision,     -- the value reported in this beacon, if any
    inp           double precision,
    cls           double precision,
    fcp           double precision,
    ttfb          double precision,
    metrics       jsonb,                -- every report as sent: delta, id, rating, attribution
    events        jsonb,
    event_count   integer NOT NULL DEFAULT 0,
    revenue       numeric,
    PRIMARY KEY (site, day, pv, seq)
) PARTITION BY RANGE (day);

-- Partitions are daily: binome.beacons_YYYYMMDD. The writer creates the ones a
-- batch needs; `binome maintain` creates tomorrow's ahead of time.
CREATE FUNCTION binome.ensure_beacon_partition(p_day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    part text := 'beacons_' || to_char(p_day, 'YYYYMMDD');
BEGIN
    IF to_regclass('binome.' || part) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Serialise creators: two collectors meeting a new day at once.
    PERFORM pg_advisory_xact_lock(hashtext('binome.beacons partition'));
    IF to_regclass('binome.' || part) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE binome.%I PARTITION OF binome.beacons FOR VALUES FROM (%L) TO (%L)',
            part, p_day, p_day + 1);
    END IF;
END $$;

-- Rows PostgreSQL refused (the rest of their batch was stored): kept with the
-- error for inspection instead of being lost.
CREATE TABLE binome.dead_letters (
    site        text NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    error       text NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (site, id)
);

-- Ingestion counters per minute and site, added to by every collector process.
-- Beacons for unknown sites count under '(unknown)' so junk cannot add rows.
CREATE TABLE binome.ingest_counts (
    site         text NOT NULL,
    minute       timestamptz NOT NULL,
    received     bigint NOT NULL DEFAULT 0,
    accepted     bigint NOT NULL DEFAULT 0,
    rejected     bigint NOT NULL DEFAULT 0,
    rows_written bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (site, minute)
);
