-- Rollups of rum.comparisons (contract section 7, issue 21), so that the view
-- costs a row per side and day and a few index reads, not a pass over every
-- page view of the 28 days (sql/views/55_comparisons.sql).
--
-- Filled per site-day by binome.write_rollup from binome.comparison_live and
-- binome.comparison_bins_live (sql/views/46_comparison_live.sql), like the
-- other rollups: a rolled-up day reads exactly as it did live.

-- One row per site, day and side of a comparison: kind 'release' (side: the
-- release, '(none)' for page views without one), 'ab_variant' (side:
-- dims->>'ab_variant') or 'period' (side '(site)': every page view of the
-- site-day). *_squares: the sum over the day's sessions of m^2, m the
-- session's page views with the metric on that side, for rum.design_effect
-- (sum(m) is *_samples). sessions / conversions: as the view counts them
-- (binome.comparison_live).
CREATE TABLE binome.comparison_days (
    site          text COLLATE "C" NOT NULL,
    day           date NOT NULL,
    kind          text COLLATE "C" NOT NULL,
    side          text COLLATE "C" NOT NULL,
    first_seen    timestamptz NOT NULL,
    lcp_samples   bigint NOT NULL,
    inp_samples   bigint NOT NULL,
    cls_samples   bigint NOT NULL,
    cwv_samples   bigint NOT NULL,
    cwv_good      bigint NOT NULL,
    lcp_squares   bigint NOT NULL,
    inp_squares   bigint NOT NULL,
    cls_squares   bigint NOT NULL,
    cwv_squares   bigint NOT NULL,
    sessions      bigint NOT NULL,
    conversions   bigint NOT NULL,
    PRIMARY KEY (site, day, kind, side)
);

-- The fine histograms (binome.metric_bin's 'lcp_fine' ...) of the 'ab_variant'
-- and 'period' sides per day, sparse like release_day_bins: they tell which
-- bin holds an order statistic of a side's days. Releases use
-- binome.release_bins, summed over each release's whole life already.
CREATE TABLE binome.comparison_day_bins (
    site    text COLLATE "C" NOT NULL,
    day     date NOT NULL,
    kind    text COLLATE "C" NOT NULL,
    side    text COLLATE "C" NOT NULL,
    metric  text COLLATE "C" NOT NULL,
    bins    smallint[] NOT NULL,
    counts  bigint[] NOT NULL,
    PRIMARY KEY (site, day, kind, side, metric)
);

-- The values inside one bin, for a side's days, read by index-only scans
-- (PostgreSQL reads the heap for any column a query uses that the index does
-- not hold, even one only inside an indexed expression, hence the INCLUDEs):
-- a week's through the releases of its days, so the release indexes of
-- sql/migrations/0001_baseline.sql are made again with `day` INCLUDEd; a
-- variant's through indexes of the page views with an ab_variant only
-- (partial), `dims` INCLUDEd for the expression on it, which compares bytewise
-- (COLLATE "C") like the sides it is compared with.
DROP INDEX binome.page_views_release_lcp;
DROP INDEX binome.page_views_release_inp;
DROP INDEX binome.page_views_release_cls;
CREATE INDEX page_views_release_lcp ON binome.page_views (site, (coalesce(release, '(none)')), lcp)
    INCLUDE (release, day) WHERE lcp IS NOT NULL;
CREATE INDEX page_views_release_inp ON binome.page_views (site, (coalesce(release, '(none)')), inp)
    INCLUDE (release, day) WHERE inp IS NOT NULL;
CREATE INDEX page_views_release_cls ON binome.page_views (site, (coalesce(release, '(none)')), cls)
    INCLUDE (release, day) WHERE cls IS NOT NULL;
CREATE INDEX page_views_variant_lcp ON binome.page_views (site, ((dims ->> 'ab_variant') COLLATE "C"), lcp)
    INCLUDE (day, dims) WHERE dims ? 'ab_variant' AND lcp IS NOT NULL;
CREATE INDEX page_views_variant_inp ON binome.page_views (site, ((dims ->> 'ab_variant') COLLATE "C"), inp)
    INCLUDE (day, dims) WHERE dims ? 'ab_variant' AND inp IS NOT NULL;
CREATE INDEX page_views_variant_cls ON binome.page_views (site, ((dims ->> 'ab_variant') COLLATE "C"), cls)
    INCLUDE (day, dims) WHERE dims ? 'ab_variant' AND cls IS NOT NULL;

-- Days rolled up before this migration have no comparison rows: closed days
-- are marked dirty and snapshots of live days made stale, so the views
-- compute those days live until `binome maintain` (or the next snapshot)
-- writes every rollup of the day again, theirs included.
INSERT INTO binome.rollup_dirty (site, day)
SELECT DISTINCT r.site, r.day
FROM binome.scorecard_days r
JOIN binome.rollup_state s ON s.site = r.site AND r.day <= s.rolled_through
ON CONFLICT DO NOTHING;
UPDATE binome.live_snapshots SET valid_until = least(valid_until, now());
