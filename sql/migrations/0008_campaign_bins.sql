-- 0008: histograms per campaign, for figures that do not split by device or country.
--
-- Why: binome.scorecard_day_bins keeps a histogram per day, site, channel,
-- campaign, device class, country and metric: the grain of rum.scorecard_daily.
-- The shared scorecard page (GET /dashboard) reads them per day and per
-- campaign over a period, and at that grain 30 days of a million page views
-- are some 665,000 histogram rows. Summed over device classes and countries
-- they are several times fewer (as many as the campaigns a day), and p75s
-- from them are the same: the bins are summed before any p75 is taken. So
-- the same bins are kept at this coarser grain too, written with the others
-- (binome.write_rollup) and read through rum.campaign_histograms.
CREATE TABLE binome.campaign_day_bins (
    day          date NOT NULL,
    site         text COLLATE "C" NOT NULL,
    channel      text COLLATE "C" NOT NULL,
    utm_campaign text COLLATE "C" NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    bins         smallint[] NOT NULL,
    counts       bigint[] NOT NULL,
    PRIMARY KEY (site, day, channel, utm_campaign, metric)
);

-- One site-day's campaign histograms, summed from its scorecard_day_bins.
CREATE FUNCTION binome.campaign_bins_of(p_site text, p_day date)
RETURNS SETOF binome.campaign_day_bins
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT day, site, channel, utm_campaign, metric,
           array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM (SELECT r.day, r.site, r.channel, r.utm_campaign, r.metric, u.bin,
                 sum(u.page_views)::bigint AS page_views
          FROM binome.scorecard_day_bins r
          CROSS JOIN LATERAL unnest(r.bins, r.counts) AS u(bin, page_views)
          WHERE r.site = p_site AND r.day = p_day
          GROUP BY r.day, r.site, r.channel, r.utm_campaign, r.metric, u.bin) AS summed
    GROUP BY day, site, channel, utm_campaign, metric
$fn$;

-- The days rolled up (or snapshotted) before this migration.
INSERT INTO binome.campaign_day_bins
SELECT c.*
FROM (SELECT DISTINCT site, day FROM binome.scorecard_day_bins) AS d
CROSS JOIN LATERAL binome.campaign_bins_of(d.site, d.day) AS c;

-- 0006's, writing the campaign histograms after the others.
CREATE OR REPLACE FUNCTION binome.write_rollup(p_site text, p_day date) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    written bigint;
BEGIN
    DELETE FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.scorecard_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.campaign_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.release_day_bins WHERE site = p_site AND day = p_day;
    DELETE FROM binome.landing_days WHERE site = p_site AND day = p_day;

    INSERT INTO binome.scorecard_days
    SELECT * FROM binome.scorecard_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.scorecard_day_bins
    SELECT day, site, channel, utm_campaign, device_class, country, metric,
           array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.scorecard_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, channel, utm_campaign, device_class, country, metric;
    INSERT INTO binome.campaign_day_bins
    SELECT * FROM binome.campaign_bins_of(p_site, p_day);
    INSERT INTO binome.release_days
    SELECT * FROM binome.release_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.release_day_bins
    SELECT day, site, release, metric, array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.release_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, release, metric;
    INSERT INTO binome.landing_days
    SELECT * FROM binome.landing_live WHERE site = p_site AND day = p_day;

    SELECT coalesce(sum(page_views), 0) INTO written
    FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    RETURN written;
END
$fn$;

-- 0002's, dropping old campaign histograms with the rest.
CREATE OR REPLACE FUNCTION binome.apply_retention(p_cutoff date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    part record;
    dropped integer := 0;
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
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < p_cutoff
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE binome.%I', part.relname);
        dropped := dropped + (part.relname LIKE 'beacons%')::int;
    END LOOP;
    DELETE FROM binome.page_views WHERE day < p_cutoff;
    DELETE FROM binome.scorecard_days WHERE day < p_cutoff;
    DELETE FROM binome.scorecard_day_bins WHERE day < p_cutoff;
    DELETE FROM binome.campaign_day_bins WHERE day < p_cutoff;
    DELETE FROM binome.release_days WHERE day < p_cutoff;
    DELETE FROM binome.release_day_bins WHERE day < p_cutoff;
    DELETE FROM binome.landing_days WHERE day < p_cutoff;
    DELETE FROM binome.rollup_dirty WHERE day < p_cutoff;
    DELETE FROM binome.ingest_counts WHERE minute < p_cutoff::timestamp AT TIME ZONE 'UTC';
    DELETE FROM binome.dead_letters WHERE failed_at < p_cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END
$fn$;

REVOKE EXECUTE ON FUNCTION binome.campaign_bins_of(text, date) FROM PUBLIC;
