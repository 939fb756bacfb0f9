-- 0002: folded page views, kept current at write time, and daily rollups.
--
-- Why: folding a page view's beacons (sql/views/10_page_views_enriched.sql
-- before this migration) costs seconds per million page views, and every
-- grouped view folded all of history on each query. Now:
--
--   binome.page_views   one row per page view, folded from its beacons by a
--                       trigger in the transaction that stores them, so every
--                       view reads it instead of raw beacons.
--   binome.page_view_facts  the same page views, narrow and partitioned by day:
--                       what the grouped views read, plus what each page
--                       view's session says about it (landing page, session
--                       channel and campaign, converted), so they never need a
--                       window over sessions, and today's part is one small
--                       partition.
--   binome.*_days       one rollup per closed UTC day and site (`binome
--                       maintain`): exact p75 per group plus histograms whose
--                       counts can be added across groups and days.
--   rollup_state/dirty  which days are rolled up; a change to a rolled-up day
--                       (a late beacon, a session that went on) marks it dirty
--                       and the views compute it live until it is rolled up
--                       again, so a view's answer never depends on whether a
--                       rollup has run.
--
-- Keys start with `site` (distributable by site, docs/scaling.md).

-- -- Histogram bins ------------------------------------------------------------
-- Fixed upper edges per metric; bin k holds (edge[k-1], edge[k]], bin 1 holds
-- [0, edge[1]] and the last bin everything above the last edge. Right-closed
-- bins because CrUX's "good" is `<=` its threshold: every CrUX threshold (LCP
-- 2500/4000, INP 200/500, CLS 0.1/0.25, FCP 1800/3000, TTFB 800/1800) is an
-- edge, so good / needs-improvement / poor counts are exact sums of bins.
-- Widths (docs/analyst-guide.md): LCP, FCP 100 ms to 10 s then 1 s to 30 s;
-- INP 10 ms to 1 s then 100 ms to 3 s; TTFB 50 ms to 5 s then 500 ms to 15 s;
-- CLS 0.01 to 1 then 0.1 to 3. Edges are built from numeric so that 0.1 is the
-- same double as the literal in `cls <= 0.1`.
CREATE FUNCTION binome.metric_bin_edges(metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(e.edge::float8 ORDER BY e.edge)
    FROM (VALUES
        ('lcp',  100::numeric, 10000::numeric, 1000::numeric, 30000::numeric),
        ('fcp',  100, 10000, 1000, 30000),
        ('inp',  10, 1000, 100, 3000),
        ('ttfb', 50, 5000, 500, 15000),
        ('cls',  0.01, 1, 0.1, 3),
        -- Ten times finer, for the exact p75 of a release (rum.release_comparison):
        -- the values it reads inside one bin are ten times fewer.
        ('lcp_fine', 10, 10000, 100, 30000),
        ('inp_fine', 2, 1000, 20, 3000),
        ('cls_fine', 0.001, 1, 0.01, 3)
    ) AS s(name, fine_step, fine_to, coarse_step, coarse_to)
    CROSS JOIN LATERAL (
        SELECT generate_series(s.fine_step, s.fine_to, s.fine_step) AS edge
        UNION ALL
        SELECT generate_series(s.fine_to + s.coarse_step, s.coarse_to, s.coarse_step)
    ) AS e
    WHERE s.name = metric
$$;

-- The edges negated and reversed: width_bucket counts thresholds <= its
-- operand, and a right-closed bin needs the count of edges < value
-- (= n - count(-edge <= -value)).
CREATE FUNCTION binome.metric_bin_neg_edges(metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(-e ORDER BY -e) FROM unnest(binome.metric_bin_edges(metric)) AS e
$$;

-- The bin (1-based) of a value; NULL for NULL. Inlined by the planner, the
-- edge arrays folded to constants.
CREATE FUNCTION binome.metric_bin(metric text, value float8) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (1 + cardinality(binome.metric_bin_neg_edges(metric))
              - width_bucket(-value, binome.metric_bin_neg_edges(metric)))::smallint
$$;

-- The edges of a metric named at run time (a column): each branch calls the
-- IMMUTABLE function with a constant, so the planner folds it once.
CREATE FUNCTION binome.metric_edges(metric text) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE metric
        WHEN 'lcp' THEN binome.metric_bin_edges('lcp')
        WHEN 'inp' THEN binome.metric_bin_edges('inp')
        WHEN 'cls' THEN binome.metric_bin_edges('cls')
        WHEN 'fcp' THEN binome.metric_bin_edges('fcp')
        WHEN 'ttfb' THEN binome.metric_bin_edges('ttfb')
        WHEN 'lcp_fine' THEN binome.metric_bin_edges('lcp_fine')
        WHEN 'inp_fine' THEN binome.metric_bin_edges('inp_fine')
        WHEN 'cls_fine' THEN binome.metric_bin_edges('cls_fine')
    END
$$;

-- Bounds of a bin: lower exclusive (NULL for the first bin, which starts at
-- 0 inclusive), upper inclusive (NULL for the last bin, which has none).
CREATE FUNCTION binome.metric_bin_lower(metric text, bin smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (binome.metric_edges(metric))[bin - 1]
$$;
CREATE FUNCTION binome.metric_bin_upper(metric text, bin smallint) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (binome.metric_edges(metric))[bin]
$$;

-- -- Folded page views ------------------------------------------------------------
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
CREATE INDEX page_views_day ON binome.page_views (day, site);
CREATE INDEX page_views_session ON binome.page_views (site, sid);
-- rum.release_comparison reads the exact p75 of a release from these: the
-- histogram says which bin holds the 75th percentile, the index gives the
-- values inside that one bin.
CREATE INDEX page_views_release_lcp ON binome.page_views (site, (coalesce(release, '(none)')), lcp)
    WHERE lcp IS NOT NULL;
CREATE INDEX page_views_release_inp ON binome.page_views (site, (coalesce(release, '(none)')), inp)
    WHERE inp IS NOT NULL;
CREATE INDEX page_views_release_cls ON binome.page_views (site, (coalesce(release, '(none)')), cls)
    WHERE cls IS NOT NULL;

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

-- Daily partitions of binome.beacons and binome.page_view_facts, created
-- together (0001's function made only the first).
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

-- The days that already have beacons (a database from before this migration).
SELECT binome.ensure_beacon_partition(to_date(substr(c.relname, 9), 'YYYYMMDD'))
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'binome.beacons'::regclass AND c.relname ~ '^beacons_[0-9]{8}$';

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

-- -- Folding ----------------------------------------------------------------------
-- The fold is rum.page_views_enriched's definition before this migration:
--   * each metric's final value is the one of the highest seq that reported it,
--     whatever order the beacons arrived in (CONTRACT section 5);
--   * consent is that of the highest seq: the visitor's latest decision; the
--     marketing columns are NULL unless it is 'marketing';
--   * path, utm_* and channel come from the lowest seq that carries them;
--     device_class, browser, os and country from the first beacon; release and
--     dims from the latest that has them; nav from the first that has it;
--   * day is the earliest of its beacons' days, received_at the first receive.
-- A page view's beacons are re-read from raw (not merged into the old row), so
-- the fold has one definition, whatever the order and grouping of the writes.
-- All folds are serialised by one transaction-level advisory lock: a fold
-- then always sees the beacons and page views of every fold before it, and two
-- collectors writing beacons of one session never each miss the other's.
-- jit stays off: compiling the fold's plan would cost a small batch more than
-- running it.
CREATE FUNCTION binome.refold_page_views(
    p_sites text[], p_pvs text[], p_first_days date[], p_last_days date[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off AS $fn$
DECLARE
    t_sites text[]; t_pvs text[]; t_firsts date[]; t_lasts date[];
    lo date; hi date;
    s_sites text[]; s_sids text[]; o_pvs text[];
    d_sites text[]; d_days date[];
    n_sites text[]; n_sids text[]; n_days date[];
    u_sites text[]; u_days date[];
    folded integer;
BEGIN
    PERFORM pg_advisory_xact_lock(7020508655466053939);  -- 'binome.fold'

    INSERT INTO binome.rollup_state (site)
    SELECT DISTINCT s FROM unnest(p_sites) AS s
    ON CONFLICT DO NOTHING;

    -- The days to read: the new beacons' and those of the beacons folded before.
    SELECT array_agg(t.site), array_agg(t.pv),
           array_agg(least(t.first_day, p.day)), array_agg(greatest(t.last_day, p.last_day)),
           min(least(t.first_day, p.day)), max(greatest(t.last_day, p.last_day)),
           array_agg(p.site) FILTER (WHERE p.pv IS NOT NULL),
           array_agg(p.sid) FILTER (WHERE p.pv IS NOT NULL),
           array_agg(p.pv) FILTER (WHERE p.pv IS NOT NULL),
           array_agg(p.day) FILTER (WHERE p.pv IS NOT NULL)
      INTO t_sites, t_pvs, t_firsts, t_lasts, lo, hi, s_sites, s_sids, o_pvs, d_days
      FROM (SELECT site, pv, min(first_day) AS first_day, max(last_day) AS last_day
              FROM unnest(p_sites, p_pvs, p_first_days, p_last_days)
                   AS u(site, pv, first_day, last_day)
             GROUP BY site, pv) AS t
      LEFT JOIN binome.page_views p ON p.site = t.site AND p.pv = t.pv;
    IF t_sites IS NULL THEN
        RETURN 0;
    END IF;
    d_sites := s_sites;

    -- Day bounds as literals let the planner keep only those partitions; each
    -- page view is then looked up by (site, day, pv), the primary key's prefix.
    EXECUTE format($q$
        WITH wanted AS (
            SELECT t.site, t.pv, d::date AS day
            FROM unnest($1::text[], $2::text[], $3::date[], $4::date[]) AS t(site, pv, first_day, last_day)
            CROSS JOIN LATERAL generate_series(t.first_day, t.last_day, interval '1 day') AS d
        ), folded AS (
            SELECT
                b.site,
                b.pv,
                min(b.day) AS day,
                max(b.day) AS last_day,
                min(b.received_at) AS received_at,
                min(b.t0) AS t0,
                (array_agg(b.sid ORDER BY b.seq DESC) FILTER (WHERE b.sid IS NOT NULL))[1] AS sid,
                (array_agg(b.consent ORDER BY b.seq DESC))[1] AS consent,
                (array_agg(b.path ORDER BY b.seq))[1] AS path,
                (array_agg(b.channel ORDER BY b.seq) FILTER (WHERE b.channel IS NOT NULL))[1] AS channel,
                (array_agg(b.ref_origin ORDER BY b.seq) FILTER (WHERE b.ref_origin IS NOT NULL))[1] AS ref_origin,
                (array_agg(b.utm_source ORDER BY b.seq) FILTER (WHERE b.consent = 'marketing'))[1] AS utm_source,
                (array_agg(b.utm_medium ORDER BY b.seq) FILTER (WHERE b.consent = 'marketing'))[1] AS utm_medium,
                (array_agg(b.utm_campaign ORDER BY b.seq) FILTER (WHERE b.consent = 'marketing'))[1] AS utm_campaign,
                (array_agg(b.utm_term ORDER BY b.seq) FILTER (WHERE b.consent = 'marketing'))[1] AS utm_term,
                (array_agg(b.utm_content ORDER BY b.seq) FILTER (WHERE b.consent = 'marketing'))[1] AS utm_content,
                (array_agg(b.device_class ORDER BY b.seq))[1] AS device_class,
                (array_agg(b.browser ORDER BY b.seq))[1] AS browser,
                (array_agg(b.os ORDER BY b.seq))[1] AS os,
                (array_agg(b.country ORDER BY b.seq))[1] AS country,
                (array_agg(b.release ORDER BY b.seq DESC) FILTER (WHERE b.release IS NOT NULL))[1] AS release,
                (array_agg(b.dims ORDER BY b.seq DESC) FILTER (WHERE b.dims IS NOT NULL))[1] AS dims,
                (array_agg(b.device ORDER BY b.seq DESC) FILTER (WHERE b.device IS NOT NULL))[1] AS device,
                (array_agg(b.nav ORDER BY b.seq) FILTER (WHERE b.nav IS NOT NULL))[1] AS nav,
                (array_agg(b.lcp ORDER BY b.seq DESC) FILTER (WHERE b.lcp IS NOT NULL))[1] AS lcp,
                (array_agg(b.inp ORDER BY b.seq DESC) FILTER (WHERE b.inp IS NOT NULL))[1] AS inp,
                (array_agg(b.cls ORDER BY b.seq DESC) FILTER (WHERE b.cls IS NOT NULL))[1] AS cls,
                (array_agg(b.fcp ORDER BY b.seq DESC) FILTER (WHERE b.fcp IS NOT NULL))[1] AS fcp,
                (array_agg(b.ttfb ORDER BY b.seq DESC) FILTER (WHERE b.ttfb IS NOT NULL))[1] AS ttfb,
                sum(b.event_count) AS event_count,
                sum(b.revenue) AS revenue,
                count(*) AS beacons
            FROM wanted w
            -- One index lookup per page view and day, never a scan of a day's
            -- partition (OFFSET 0 keeps the planner from turning it into a join).
            CROSS JOIN LATERAL (
                SELECT * FROM binome.beacons b
                WHERE b.site = w.site AND b.day = w.day AND b.pv = w.pv
                  AND b.day BETWEEN %L AND %L
                OFFSET 0
            ) AS b
            GROUP BY b.site, b.pv
        ), stored AS (
            INSERT INTO binome.page_views AS p (
                site, pv, day, last_day, sid, received_at, t0, consent, path, channel,
                utm_source, utm_medium, utm_campaign, utm_term, utm_content, ref_origin,
                device_class, browser, os, country, release, dims, device, nav,
                lcp, inp, cls, fcp, ttfb, converted, revenue, beacons)
            SELECT
                site, pv, day, last_day, coalesce(sid, pv), received_at, t0, consent, path,
                CASE WHEN consent = 'marketing' THEN channel END,
                CASE WHEN consent = 'marketing' THEN utm_source END,
                CASE WHEN consent = 'marketing' THEN utm_medium END,
                CASE WHEN consent = 'marketing' THEN utm_campaign END,
                CASE WHEN consent = 'marketing' THEN utm_term END,
                CASE WHEN consent = 'marketing' THEN utm_content END,
                CASE WHEN consent = 'marketing' THEN ref_origin END,
                device_class, browser, os, country, release,
                CASE WHEN consent = 'marketing' THEN dims
                     WHEN dims ? 'page_type' THEN jsonb_build_object('page_type', dims -> 'page_type')
                END,
                device, nav, lcp, inp, cls, fcp, ttfb,
                CASE WHEN consent = 'marketing' THEN event_count > 0 END,
                CASE WHEN consent = 'marketing' THEN coalesce(revenue, 0) END,
                beacons
            FROM folded
            ORDER BY site, pv
            ON CONFLICT (site, pv) DO UPDATE SET
                day = excluded.day, last_day = excluded.last_day, sid = excluded.sid,
                received_at = excluded.received_at, t0 = excluded.t0, consent = excluded.consent,
                path = excluded.path, channel = excluded.channel,
                utm_source = excluded.utm_source, utm_medium = excluded.utm_medium,
                utm_campaign = excluded.utm_campaign, utm_term = excluded.utm_term,
                utm_content = excluded.utm_content, ref_origin = excluded.ref_origin,
                device_class = excluded.device_class, browser = excluded.browser,
                os = excluded.os, country = excluded.country, release = excluded.release,
                dims = excluded.dims, device = excluded.device, nav = excluded.nav,
                lcp = excluded.lcp, inp = excluded.inp, cls = excluded.cls,
                fcp = excluded.fcp, ttfb = excluded.ttfb, converted = excluded.converted,
                revenue = excluded.revenue, beacons = excluded.beacons
            RETURNING p.*
        ), facts AS (
            INSERT INTO binome.page_view_facts AS f (
                site, day, pv, sid, received_at, consent, path, release, device_class, country,
                lcp, inp, cls, fcp, ttfb, converted, revenue)
            SELECT site, day, pv, sid, received_at, consent, path, release, device_class, country,
                   lcp, inp, cls, fcp, ttfb, converted, revenue
            FROM stored
            ORDER BY site, day, pv
            ON CONFLICT (site, day, pv) DO UPDATE SET
                sid = excluded.sid, received_at = excluded.received_at,
                consent = excluded.consent, path = excluded.path, release = excluded.release,
                device_class = excluded.device_class, country = excluded.country,
                lcp = excluded.lcp, inp = excluded.inp, cls = excluded.cls, fcp = excluded.fcp,
                ttfb = excluded.ttfb, converted = excluded.converted, revenue = excluded.revenue
        )
        SELECT array_agg(site), array_agg(sid), array_agg(day), count(*)::int FROM stored
    $q$, lo, hi)
    INTO n_sites, n_sids, n_days, folded
    USING t_sites, t_pvs, t_firsts, t_lasts;

    -- A page view whose day moved (a beacon with an earlier day) leaves its old
    -- facts row behind: remove it.
    IF o_pvs IS NOT NULL THEN
        DELETE FROM binome.page_view_facts f
        USING unnest(d_sites, o_pvs, d_days) AS o(site, pv, day)
        JOIN binome.page_views p ON p.site = o.site AND p.pv = o.pv AND p.day <> o.day
        WHERE f.site = o.site AND f.day = o.day AND f.pv = o.pv;
    END IF;

    s_sites := coalesce(s_sites, '{}') || coalesce(n_sites, '{}');
    s_sids := coalesce(s_sids, '{}') || coalesce(n_sids, '{}');
    d_sites := coalesce(d_sites, '{}') || coalesce(n_sites, '{}');
    d_days := coalesce(d_days, '{}') || coalesce(n_days, '{}');

    -- What each session says about its page views (rum.sessions' definitions):
    -- the landing page view is the first by t0 (the client's clock, one clock
    -- within a session), then by receive time (CONTRACT section 6).
    WITH members AS (
        SELECT p.site, p.pv, p.sid, p.day, p.t0, p.received_at, p.consent, p.channel,
               p.utm_campaign, p.converted, p.revenue, p.release, p.device_class, p.country
        FROM binome.page_views p
        WHERE (p.site, p.sid) IN (SELECT DISTINCT * FROM unnest(s_sites, s_sids))
    ), landing AS (
        SELECT DISTINCT ON (site, sid) site, sid, pv AS landing_pv,
            CASE WHEN consent = 'marketing' THEN coalesce(channel, '(none)') ELSE '(no consent)' END AS channel,
            CASE WHEN consent = 'marketing' THEN coalesce(utm_campaign, '(none)') ELSE '(no consent)' END AS campaign
        FROM members
        ORDER BY site, sid, t0 NULLS LAST, received_at, pv
    ), totals AS (
        SELECT site, sid, count(*)::int AS page_views,
               bool_or(coalesce(converted, false)) AS converted, sum(revenue) AS revenue
        FROM members
        GROUP BY site, sid
    ), derived AS (
        SELECT m.site, m.pv, m.sid, m.day, m.consent, m.release, m.device_class, m.country,
               m.pv = l.landing_pv AS is_landing,
               l.channel AS session_channel, l.campaign AS session_campaign,
               t.page_views, t.converted, t.revenue,
               CASE WHEN m.consent = 'marketing' THEN l.channel ELSE '(no consent)' END AS group_channel,
               CASE WHEN m.consent = 'marketing' THEN l.campaign ELSE '(no consent)' END AS group_campaign
        FROM members m
        JOIN landing l ON l.site = m.site AND l.sid = m.sid
        JOIN totals t ON t.site = m.site AND t.sid = m.sid
    ), flagged AS (
        SELECT d.*,
            row_number() OVER (
                PARTITION BY site, sid, day, group_channel, group_campaign,
                             coalesce(device_class, '(none)'), coalesce(country, '(none)')
                ORDER BY pv) = 1 AS first_in_group,
            consent = 'marketing' AND row_number() OVER (
                PARTITION BY site, sid, coalesce(release, '(none)'), consent = 'marketing'
                ORDER BY day, pv) = 1 AS first_in_release
        FROM derived d
    ), updated AS (
        UPDATE binome.page_view_facts p SET
            is_landing = f.is_landing, session_channel = f.session_channel,
            session_campaign = f.session_campaign, session_page_views = f.page_views,
            session_converted = f.converted, session_revenue = f.revenue,
            group_channel = f.group_channel, group_campaign = f.group_campaign,
            first_in_group = f.first_in_group, first_in_release = f.first_in_release
        FROM flagged f
        WHERE p.site = f.site AND p.day = f.day AND p.pv = f.pv
          AND (p.is_landing, p.session_channel, p.session_campaign, p.session_page_views,
               p.session_converted, p.session_revenue, p.group_channel, p.group_campaign,
               p.first_in_group, p.first_in_release)
              IS DISTINCT FROM
              (f.is_landing, f.session_channel, f.session_campaign, f.page_views,
               f.converted, f.revenue, f.group_channel, f.group_campaign,
               f.first_in_group, f.first_in_release)
        RETURNING p.site, p.day
    )
    SELECT array_agg(site), array_agg(day) INTO u_sites, u_days FROM updated;

    d_sites := d_sites || coalesce(u_sites, '{}');
    d_days := d_days || coalesce(u_days, '{}');

    -- Rolled-up days whose page views changed are computed live until rolled
    -- up again.
    INSERT INTO binome.rollup_dirty AS d (site, day)
    SELECT DISTINCT c.site, c.day
    FROM unnest(d_sites, d_days) AS c(site, day)
    JOIN binome.rollup_state s ON s.site = c.site AND c.day <= s.rolled_through
    ORDER BY 1, 2
    ON CONFLICT (site, day) DO UPDATE SET version = d.version + 1, marked_at = now();

    RETURN folded;
END
$fn$;

-- Fold again every page view with a beacon between two days (backfill, bench).
CREATE FUNCTION binome.refold_days(p_from date, p_to date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    sites text[]; pvs text[]; firsts date[]; lasts date[];
BEGIN
    SELECT array_agg(site), array_agg(pv), array_agg(first_day), array_agg(last_day)
      INTO sites, pvs, firsts, lasts
      FROM (SELECT site, pv, min(day) AS first_day, max(day) AS last_day
              FROM binome.beacons WHERE day BETWEEN p_from AND p_to
             GROUP BY site, pv) AS b;
    IF sites IS NULL THEN
        RETURN 0;
    END IF;
    RETURN binome.refold_page_views(sites, pvs, firsts, lasts);
END
$fn$;

-- Fires once per INSERT or COPY into binome.beacons (not into a partition
-- directly), with the rows actually inserted: a resend refused by the primary
-- key folds nothing.
CREATE FUNCTION binome.fold_inserted_beacons() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    sites text[]; pvs text[]; firsts date[]; lasts date[];
BEGIN
    SELECT array_agg(site), array_agg(pv), array_agg(first_day), array_agg(last_day)
      INTO sites, pvs, firsts, lasts
      FROM (SELECT site, pv, min(day) AS first_day, max(day) AS last_day
              FROM inserted_beacons GROUP BY site, pv) AS b;
    IF sites IS NOT NULL THEN
        PERFORM binome.refold_page_views(sites, pvs, firsts, lasts);
    END IF;
    RETURN NULL;
END
$fn$;

-- Existing beacons (a database from before this migration).
SELECT binome.refold_days(min(day), max(day)) FROM binome.beacons HAVING count(*) > 0;

CREATE TRIGGER fold_page_views
    AFTER INSERT ON binome.beacons
    REFERENCING NEW TABLE AS inserted_beacons
    FOR EACH STATEMENT EXECUTE FUNCTION binome.fold_inserted_beacons();

-- -- Maintenance (`binome maintain`) ------------------------------------------------
-- SECURITY DEFINER so the collector can run it under the binome_writer role.

-- Close every day up to p_through: mark those with page views dirty (the views
-- keep computing them live) and move rolled_through. Under the fold lock, so
-- no fold in flight misses the move. Returns every day awaiting a rollup.
CREATE FUNCTION binome.close_days(p_through date) RETURNS TABLE (site text, day date)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(7020508655466053939);  -- 'binome.fold'
    INSERT INTO binome.rollup_dirty AS r (site, day)
    SELECT s.site, d.day::date
    FROM binome.rollup_state s
    CROSS JOIN LATERAL (
        SELECT min(p.day) AS first_day FROM binome.page_views p
        WHERE p.site = s.site AND p.day > s.rolled_through AND p.day <= p_through
    ) AS f
    CROSS JOIN LATERAL generate_series(f.first_day, p_through, interval '1 day') AS d(day)
    WHERE s.rolled_through < p_through
      AND EXISTS (SELECT 1 FROM binome.page_views p WHERE p.site = s.site AND p.day = d.day::date)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;
    UPDATE binome.rollup_state AS s SET rolled_through = p_through
    WHERE s.rolled_through < p_through;
    RETURN QUERY SELECT r.site, r.day FROM binome.rollup_dirty r ORDER BY r.day, r.site;
END
$fn$;

-- Roll up one dirty day of one site from the live views. Returns false when
-- the day changed meanwhile (it stays dirty, for the next run).
CREATE FUNCTION binome.rollup_day(p_site text, p_day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    seen bigint;
BEGIN
    SELECT version INTO seen FROM binome.rollup_dirty WHERE site = p_site AND day = p_day;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    DELETE FROM binome.scorecard_days WHERE site = p_site AND day = p_day;
    DELETE FROM binome.scorecard_day_bins WHERE site = p_site AND day = p_day;
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
    INSERT INTO binome.release_days
    SELECT * FROM binome.release_live WHERE site = p_site AND day = p_day;
    INSERT INTO binome.release_day_bins
    SELECT day, site, release, metric, array_agg(bin ORDER BY bin), array_agg(page_views ORDER BY bin)
    FROM binome.release_bins_live WHERE site = p_site AND day = p_day
    GROUP BY day, site, release, metric;
    INSERT INTO binome.landing_days
    SELECT * FROM binome.landing_live WHERE site = p_site AND day = p_day;

    DELETE FROM binome.rollup_dirty WHERE site = p_site AND day = p_day AND version = seen;
    RETURN FOUND;
END
$fn$;

-- Drop what is older than the retention cutoff: raw and facts partitions, page
-- views, rollups, counters and dead letters. Returns the raw partitions dropped.
CREATE FUNCTION binome.apply_retention(p_cutoff date) RETURNS integer
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
    DELETE FROM binome.release_days WHERE day < p_cutoff;
    DELETE FROM binome.release_day_bins WHERE day < p_cutoff;
    DELETE FROM binome.landing_days WHERE day < p_cutoff;
    DELETE FROM binome.rollup_dirty WHERE day < p_cutoff;
    DELETE FROM binome.ingest_counts WHERE minute < p_cutoff::timestamp AT TIME ZONE 'UTC';
    DELETE FROM binome.dead_letters WHERE failed_at < p_cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END
$fn$;

REVOKE EXECUTE ON FUNCTION binome.ensure_beacon_partition(date),
    binome.refold_page_views(text[], text[], date[], date[]), binome.refold_days(date, date),
    binome.fold_inserted_beacons(), binome.close_days(date), binome.rollup_day(text, date),
    binome.apply_retention(date)
    FROM PUBLIC;
