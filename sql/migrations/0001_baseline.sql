-- The schema Binome's views and functions stand on: schemas, tables and their
-- indexes, the two least-privileged roles and their grants on tables, and the
-- database's settings. Code is not here: functions and triggers are in
-- sql/functions/, views in sql/views/, both re-created on every `binome
-- migrate` after the migrations.
--
-- This baseline is the whole pre-release schema (issue 19). From the first
-- release on it is never edited: a change to a released schema is a new
-- migration after it (README, "Schema changes").
--
-- Private schema `binome` (created by collector/db.py before any migration);
-- analysts read the views of schema `rum`. Every primary key and unique
-- constraint starts with `site`, so the schema can be distributed by site
-- (docs/scaling.md).

CREATE SCHEMA IF NOT EXISTS rum;

-- -- Sites and raw beacons --------------------------------------------------------
CREATE TABLE binome.sites (
    site       text PRIMARY KEY CHECK (site ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A site without origins accepts beacons from any origin (docs/beacon-format.md, "Routes").
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

-- Partitions are daily: binome.beacons_YYYYMMDD, created with the day's
-- binome.page_view_facts partition by binome.ensure_beacon_partition
-- (sql/functions/10_partitions.sql).

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

-- -- Folded page views --------------------------------------------------------------
-- Folding a page view's beacons at query time cost seconds per million page
-- views in every grouped view, so they are folded when written
-- (sql/functions/30_fold.sql) into:
--   binome.page_views       one row per page view, what every view reads
--                           instead of raw beacons;
--   binome.page_view_facts  the same page views, narrow and partitioned by day,
--                           with what each one's session says about it
--                           (landing page, session channel and campaign,
--                           converted), so the grouped views never need a
--                           window over sessions and today is one small
--                           partition.
-- One row per page view: what rum.page_views_enriched shows (marketing columns
-- already NULL unless the page view's consent is 'marketing'), plus `last_day`
-- (the partitions its beacons are in: day..last_day). Keyed by (site, pv) so a
-- beacon finds its page view whatever day it lands on.
-- Columns the views group or join by compare bytewise (COLLATE "C"): they are
-- identifiers, and sorting a day's million page views by them with the
-- locale's rules costs several times more.
CREATE TABLE binome.page_views (
    site          text COLLATE "C" NOT NULL,
    pv            text COLLATE "C" NOT NULL,
    day           date NOT NULL,
    last_day      date NOT NULL,
    sid           text COLLATE "C" NOT NULL,        -- the snippet's sid, or pv when it sent none
    received_at   timestamptz NOT NULL,
    t0            timestamptz,
    consent       text NOT NULL,
    path          text NOT NULL,
    channel       text,
    utm_source    text,
    utm_medium    text,
    utm_campaign  text,
    utm_term      text,
    utm_content   text,
    ref_origin    text,
    device_class  text COLLATE "C",
    browser       text,
    os            text,
    country       text COLLATE "C",
    release       text COLLATE "C",
    dims          jsonb,
    device        jsonb,
    nav           jsonb,
    lcp           double precision,
    inp           double precision,
    cls           double precision,
    fcp           double precision,
    ttfb          double precision,
    converted     boolean,
    revenue       numeric,
    beacons       integer NOT NULL,
    PRIMARY KEY (site, pv)
);
CREATE INDEX page_views_session ON binome.page_views (site, sid);
-- rum.release_comparison reads the exact p75 of a release from these: the
-- histogram says which bin holds the 75th percentile, the index gives the
-- values inside that one bin.
-- Read through an index-only scan (the rows of closed days are all-visible once
-- vacuumed), hence release INCLUDEd: the key holds only coalesce(release, ...).
CREATE INDEX page_views_release_lcp ON binome.page_views (site, (coalesce(release, '(none)')), lcp)
    INCLUDE (release) WHERE lcp IS NOT NULL;
CREATE INDEX page_views_release_inp ON binome.page_views (site, (coalesce(release, '(none)')), inp)
    INCLUDE (release) WHERE inp IS NOT NULL;
CREATE INDEX page_views_release_cls ON binome.page_views (site, (coalesce(release, '(none)')), cls)
    INCLUDE (release) WHERE cls IS NOT NULL;
-- Per-path questions over rum.page_views_enriched ("how fast is /checkout this
-- month?", which no rollup's grain answers) read that path's entries only.
CREATE INDEX page_views_path ON binome.page_views (site, path, day) INCLUDE (lcp, inp, cls);
-- A query for a few days reads those days. On day alone: PostgreSQL discounts
-- the physical order of a multi-column index's first column (btcostestimate),
-- and costed (day, site) as if a day's rows were spread over the whole table.
CREATE INDEX page_views_day ON binome.page_views (day);

-- What the grouped views read of each page view, partitioned by its day like
-- the raw beacons (binome.ensure_beacon_partition creates both), so that the
-- live part of a view (today) is one partition of narrow rows, and retention
-- drops partitions. The fold keeps it in step with binome.page_views.
CREATE TABLE binome.page_view_facts (
    site               text COLLATE "C" NOT NULL,
    day                date NOT NULL,
    pv                 text COLLATE "C" NOT NULL,
    sid                text COLLATE "C" NOT NULL,
    received_at        timestamptz NOT NULL,
    consent            text NOT NULL,
    path               text NOT NULL,
    release            text COLLATE "C",
    device_class       text COLLATE "C",
    country            text COLLATE "C",
    lcp                double precision,
    inp                double precision,
    cls                double precision,
    fcp                double precision,
    ttfb               double precision,
    converted          boolean,
    revenue            numeric,
    -- What the session says, recomputed whenever one of its page views changes:
    is_landing         boolean NOT NULL DEFAULT false, -- first of its session by t0, received_at, pv
    session_channel    text,      -- the landing page view's ('(none)', '(no consent)')
    session_campaign   text,
    session_page_views integer,
    session_converted  boolean,
    session_revenue    numeric,
    group_channel      text COLLATE "C",  -- this page view's scorecard group: the session's,
    group_campaign     text COLLATE "C",  -- or '(no consent)' when it has no consent
    first_in_group     boolean,   -- counts its session once per day and scorecard group
    first_in_release   boolean,   -- counts its session once per release (marketing consent)
    PRIMARY KEY (site, day, pv)
) PARTITION BY RANGE (day);

-- What a page view's session columns depend on, as it was before a fold
-- (binome.refold_page_views recomputes a session only when one of them changed).
CREATE TYPE binome.fold_session_inputs AS (
    site text, pv text, sid text, day date, t0 timestamptz, received_at timestamptz,
    consent text, channel text, utm_campaign text, converted boolean, revenue numeric,
    release text, device_class text, country text
);

-- Page views stored by a connection that sets binome.defer_fold = on (the
-- collector's writer), waiting for the folder (collector/folder.py) or `binome
-- maintain` to fold them: folding inside the writer's transaction paced
-- ingest. A page view queued twice before its fold is folded once.
CREATE TABLE binome.fold_queue (
    site       text COLLATE "C" NOT NULL,
    pv         text NOT NULL,
    first_day  date NOT NULL,
    last_day   date NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, pv)
);

-- -- Rollup bookkeeping ---------------------------------------------------------
-- Every site with page views has a row; days up to rolled_through are rolled
-- up (those without page views need no rollup). The views read rollups for
-- those days, except dirty ones, and page views for the rest.
CREATE TABLE binome.rollup_state (
    site           text COLLATE "C" PRIMARY KEY,
    rolled_through date NOT NULL DEFAULT '-infinity'
);

-- A rolled-up day whose page views changed since its rollup (or that is being
-- rolled up). `version` lets the rollup clear the mark only when nothing
-- changed while it ran.
CREATE TABLE binome.rollup_dirty (
    site      text COLLATE "C" NOT NULL,
    day       date NOT NULL,
    version   bigint NOT NULL DEFAULT 1,
    marked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, day)
);

-- -- Rollups ------------------------------------------------------------------------
-- Filled from the same views that compute live days (binome.*_live in
-- sql/views/), so a rolled-up day reads exactly as it did live.

-- rum.scorecard_daily's groups.
CREATE TABLE binome.scorecard_days (
    day          date NOT NULL,
    site         text COLLATE "C" NOT NULL,
    channel      text COLLATE "C" NOT NULL,
    utm_campaign text COLLATE "C" NOT NULL,
    device_class text COLLATE "C" NOT NULL,
    country      text COLLATE "C" NOT NULL,
    page_views   bigint NOT NULL,
    sessions     bigint NOT NULL,
    conversions  bigint,
    revenue      numeric,
    lcp_samples bigint NOT NULL, lcp_p75 float8, lcp_good bigint NOT NULL, lcp_poor bigint NOT NULL,
    inp_samples bigint NOT NULL, inp_p75 float8, inp_good bigint NOT NULL, inp_poor bigint NOT NULL,
    cls_samples bigint NOT NULL, cls_p75 float8, cls_good bigint NOT NULL, cls_poor bigint NOT NULL,
    fcp_samples bigint NOT NULL, fcp_p75 float8, fcp_good bigint NOT NULL, fcp_poor bigint NOT NULL,
    ttfb_samples bigint NOT NULL, ttfb_p75 float8, ttfb_good bigint NOT NULL, ttfb_poor bigint NOT NULL,
    cwv_samples  bigint NOT NULL,
    cwv_good     bigint NOT NULL,
    PRIMARY KEY (site, day, channel, utm_campaign, device_class, country)
);

-- Their histograms, sparse: the non-empty bins and their page view counts.
CREATE TABLE binome.scorecard_day_bins (
    day          date NOT NULL,
    site         text COLLATE "C" NOT NULL,
    channel      text COLLATE "C" NOT NULL,
    utm_campaign text COLLATE "C" NOT NULL,
    device_class text COLLATE "C" NOT NULL,
    country      text COLLATE "C" NOT NULL,
    metric       text COLLATE "C" NOT NULL,
    bins         smallint[] NOT NULL,
    counts       bigint[] NOT NULL,
    PRIMARY KEY (site, day, channel, utm_campaign, device_class, country, metric)
);

-- rum.release_comparison, per day. sessions / conversions count each session
-- once per release (on the day of its first page view with that release).
CREATE TABLE binome.release_days (
    day         date NOT NULL,
    site        text COLLATE "C" NOT NULL,
    release     text COLLATE "C" NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    page_views  bigint NOT NULL,
    lcp_samples bigint NOT NULL,
    inp_samples bigint NOT NULL,
    cls_samples bigint NOT NULL,
    cwv_samples bigint NOT NULL,
    cwv_good    bigint NOT NULL,
    sessions    bigint NOT NULL,
    conversions bigint NOT NULL,
    PRIMARY KEY (site, day, release)
);

CREATE TABLE binome.release_day_bins (
    day     date NOT NULL,
    site    text COLLATE "C" NOT NULL,
    release text COLLATE "C" NOT NULL,
    metric  text COLLATE "C" NOT NULL,
    bins    smallint[] NOT NULL,
    counts  bigint[] NOT NULL,
    PRIMARY KEY (site, day, release, metric)
);

-- rum.perf_vs_conversion, per landing day: sessions by their landing page's LCP.
CREATE TABLE binome.landing_days (
    day           date NOT NULL,
    site          text COLLATE "C" NOT NULL,
    lcp_bucket_ms integer NOT NULL,
    sessions      bigint NOT NULL,
    conversions   bigint NOT NULL,
    bounces       bigint NOT NULL,
    PRIMARY KEY (site, day, lcp_bucket_ms)
);

-- rum.campaign_histograms: the bins of scorecard_day_bins summed over device
-- classes and countries, for figures that do not split by them (GET
-- /dashboard): as many rows a day as campaigns, and the same p75s, since bins
-- are summed before any p75 is taken.
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

-- Each release's fine histogram summed over its closed days (days up to its
-- site's rolled_through), so that rum.release_comparison costs per release, not
-- per day of history. Kept in step by triggers on release_day_bins and
-- rollup_state (sql/functions/45_rollup_sums.sql).
CREATE TABLE binome.release_bins (
    site    text COLLATE "C" NOT NULL,
    release text COLLATE "C" NOT NULL,
    metric  text COLLATE "C" NOT NULL,
    bins    smallint[] NOT NULL,
    counts  bigint[] NOT NULL,
    PRIMARY KEY (site, release, metric)
);

-- Each rolled-up site-day's totals (closed days and snapshots alike: the rows
-- of scorecard_days summed), read through rum.site_daily: the dashboard's share
-- of page views measured with marketing consent costs a row per day. Kept in
-- step by triggers on scorecard_days (sql/functions/45_rollup_sums.sql).
CREATE TABLE binome.site_days (
    site                 text COLLATE "C" NOT NULL,
    day                  date NOT NULL,
    page_views           bigint NOT NULL,
    marketing_page_views bigint NOT NULL,  -- outside the '(no consent)' groups
    PRIMARY KEY (site, day)
);

-- -- Snapshots of busy live days ------------------------------------------------------
-- A live day with many page views is rolled up too, like a closed day, into
-- the same rollup tables, every BINOME_LIVE_SNAPSHOT_SECONDS
-- (sql/functions/50_live_snapshots.sql); the views read that snapshot while
-- it is fresh (valid_until) and compute the day live otherwise
-- (sql/views/03_rollup_excluded.sql, sql/views/05_live_page_views.sql): for
-- each site and day, exactly one of the two. Rollup rows of a live day exist
-- only with its snapshot row; closing the day replaces both.
CREATE TABLE binome.live_snapshots (
    site        text COLLATE "C" NOT NULL,
    day         date NOT NULL,
    taken_at    timestamptz NOT NULL,
    valid_until timestamptz NOT NULL,
    page_views  bigint NOT NULL,
    PRIMARY KEY (site, day)
);


-- -- Roles (README, "Roles") ----------------------------------------------------------
--   binome_writer   what the collector does and nothing else: read the sites,
--                   insert beacons (and read the four key columns it checks
--                   resends against), add to the ingest counters, keep dead
--                   letters, create partitions, fold and run `binome maintain`
--                   through definer's functions (granted in
--                   sql/functions/99_grants.sql).
--   binome_analyst  reads the views of schema rum (sql/views/99_grants.sql).
--
-- Roles belong to the whole cluster, not to one database: create them only if
-- absent, and let a concurrent migration of another database win the race. A
-- migration role without CREATEROLE (some managed services) gets a warning,
-- not a failed migration: an administrator creates the two roles and runs
-- `binome migrate` again, which gives the grants on functions and views.
DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['binome_writer', 'binome_analyst'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION
                WHEN duplicate_object OR unique_violation THEN
                    NULL;
                WHEN insufficient_privilege THEN
                    RAISE WARNING 'cannot create role %: %', role_name, SQLERRM;
            END;
        END IF;
    END LOOP;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT USAGE ON SCHEMA binome TO binome_writer;
        -- `binome serve` checks that no migration is pending before it starts.
        GRANT SELECT ON binome.schema_migrations TO binome_writer;
        GRANT SELECT ON binome.sites, binome.site_origins TO binome_writer;
        -- collector/writer.py: a temporary table shaped LIKE binome.beacon_columns
        -- (a view without rows, granted in sql/views/99_grants.sql), then INSERT
        -- ... SELECT from it, skipping resends it finds by (site, day, pv, seq),
        -- RETURNING site.
        GRANT INSERT ON binome.beacons TO binome_writer;
        GRANT SELECT (site, day, pv, seq) ON binome.beacons TO binome_writer;
        GRANT INSERT ON binome.dead_letters TO binome_writer;
        GRANT SELECT, INSERT, UPDATE ON binome.ingest_counts TO binome_writer;
        -- `binome maintain` counts what is queued before it folds it.
        GRANT SELECT ON binome.fold_queue TO binome_writer;
    END IF;

    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_analyst') THEN
        GRANT USAGE ON SCHEMA rum TO binome_analyst;
        -- The planner inlines the histogram helpers the views call (binome.metric_bin
        -- ...), looking their names up as the querying role: it needs to see
        -- schema binome's names. No table of it is granted, and its functions
        -- that write are revoked from PUBLIC (sql/functions/99_grants.sql).
        GRANT USAGE ON SCHEMA binome TO binome_analyst;
    END IF;
END
$$;

-- -- No JIT compilation in this database ---------------------------------------------
-- The views' plans are estimated over every daily partition (the planner cannot
-- know that a query reads a day or two of them), so their cost passes
-- jit_above_cost and PostgreSQL would compile them for longer than they run;
-- nothing Binome runs is long enough for JIT to pay back.
-- The database's default reaches every role and login; the collector also turns
-- JIT off on its own connections (collector/db.py). Changing a database's
-- defaults takes its owner: a migration role that is not gets a warning, and
-- the README's "Roles" says what to run instead.
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET jit = off', current_database());
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE WARNING 'cannot set jit = off on database %: %', current_database(), SQLERRM;
END
$$;
