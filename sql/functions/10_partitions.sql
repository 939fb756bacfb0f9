-- Daily partitions and retention: what creates a day's partitions and what
-- drops the days older than the retention cutoff (`binome maintain`).
-- SECURITY DEFINER so that the collector can call them as binome_writer and
-- `binome maintain` as binome_maintainer (sql/functions/99_grants.sql); search_path pinned, as every definer's
-- function here, so that a caller's objects cannot stand in for PostgreSQL's.

-- The day's partitions of binome.beacons and binome.page_view_facts
-- (binome.beacons_YYYYMMDD, binome.page_view_facts_YYYYMMDD), created together
-- by the writer for the days a batch needs and by `binome maintain` a day ahead.
CREATE OR REPLACE FUNCTION binome.ensure_beacon_partition(p_day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    suffix text := to_char(p_day, 'YYYYMMDD');
BEGIN
    IF to_regclass('binome.beacons_' || suffix) IS NOT NULL
       AND to_regclass('binome.page_view_facts_' || suffix) IS NOT NULL THEN
        RETURN;
    END IF;
    -- Serialise creators: two collectors meeting a new day at once.
    PERFORM pg_advisory_xact_lock(hashtext('binome.beacons partition'));
    IF to_regclass('binome.beacons_' || suffix) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE binome.%I PARTITION OF binome.beacons FOR VALUES FROM (%L) TO (%L)',
            'beacons_' || suffix, p_day, p_day + 1);
    END IF;
    IF to_regclass('binome.page_view_facts_' || suffix) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE binome.%I PARTITION OF binome.page_view_facts FOR VALUES FROM (%L) TO (%L)',
            'page_view_facts_' || suffix, p_day, p_day + 1);
    END IF;
END
$fn$;

-- The cutoff retention may apply: the one asked, but never later than today
-- (UTC, the server's clock) minus binome.retention_policy's months (issue 20: a
-- caller must not drop data younger than the retention period). The schema's
-- owner, who may drop any table anyway, gets the cutoff it asks (tests roll
-- dates of their own).
CREATE OR REPLACE FUNCTION binome.retention_cutoff(p_cutoff date) RETURNS date
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT CASE WHEN pg_has_role(session_user, n.nspowner, 'USAGE') THEN p_cutoff
                ELSE least(p_cutoff, ((now() AT TIME ZONE 'UTC')::date
                                      - make_interval(months => p.months))::date)
           END
    FROM pg_namespace n, binome.retention_policy p
    WHERE n.nspname = 'binome'
$fn$;

-- Drop what is older than the retention cutoff (binome.retention_cutoff): raw
-- and facts partitions, page views, rollups, counters and dead letters. Returns
-- the raw partitions dropped. binome_maintainer's only (99_grants.sql).
CREATE OR REPLACE FUNCTION binome.apply_retention(p_cutoff date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    part record;
    dropped integer := 0;
    cutoff date := binome.retention_cutoff(p_cutoff);
BEGIN
    -- Dropping a partition locks binome.beacons: rather than queue the
    -- collectors' inserts behind a long wait, give up and try at the next run.
    PERFORM set_config('lock_timeout', '5s', true);
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent IN ('binome.beacons'::regclass, 'binome.page_view_facts'::regclass)
          AND c.relname ~ '^(beacons|page_view_facts)_[0-9]{8}$'
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE binome.%I', part.relname);
        dropped := dropped + (part.relname LIKE 'beacons%')::int;
    END LOOP;
    DELETE FROM binome.page_views WHERE day < cutoff;
    DELETE FROM binome.scorecard_days WHERE day < cutoff;
    DELETE FROM binome.scorecard_day_bins WHERE day < cutoff;
    DELETE FROM binome.campaign_day_bins WHERE day < cutoff;
    DELETE FROM binome.release_days WHERE day < cutoff;
    DELETE FROM binome.release_day_bins WHERE day < cutoff;
    DELETE FROM binome.landing_days WHERE day < cutoff;
    DELETE FROM binome.comparison_days WHERE day < cutoff;
    DELETE FROM binome.comparison_day_bins WHERE day < cutoff;
    DELETE FROM binome.worth_days WHERE day < cutoff;
    DELETE FROM binome.rollup_dirty WHERE day < cutoff;
    DELETE FROM binome.ingest_counts WHERE minute < cutoff::timestamp AT TIME ZONE 'UTC';
    DELETE FROM binome.dead_letters WHERE failed_at < cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END
$fn$;
