-- Rollup of rum.speed_worth (issue 21), so that the view reads a row per day
-- and channel-and-campaign group instead of every landing page view of the 28
-- days (sql/views/41_speed_worth.sql).
--
-- Filled per site-day by binome.write_rollup from binome.worth_live
-- (sql/views/36_worth_live.sql), like the other rollups: a rolled-up day reads
-- exactly as it did live. One row per site, day (the landing page view's) and
-- session channel and campaign: the sessions whose landing page view was
-- measured with marketing consent and reported an LCP, those that converted
-- and their revenue, split by fast (LCP <= rum.good_threshold('lcp')) and slow
-- landing. channel and utm_campaign are never NULL (the fold writes '(none)').
CREATE TABLE binome.worth_days (
    site              text COLLATE "C" NOT NULL,
    day               date NOT NULL,
    channel           text NOT NULL,
    utm_campaign      text NOT NULL,
    sessions          bigint NOT NULL,
    conversions       bigint NOT NULL,
    revenue           numeric,
    fast_sessions     bigint NOT NULL,
    fast_conversions  bigint NOT NULL,
    slow_sessions     bigint NOT NULL,
    slow_conversions  bigint NOT NULL,
    PRIMARY KEY (site, day, channel, utm_campaign)
);

-- Days rolled up before this migration have no rows here: those the view reads
-- (its 28 days, and a day of margin for the date turning meanwhile) are marked
-- dirty and snapshots of live days made stale, so the views compute them live
-- until `binome maintain` (or the next snapshot) writes every rollup of the
-- day again, this one included. Older days are never read by the view.
INSERT INTO binome.rollup_dirty (site, day)
SELECT DISTINCT r.site, r.day
FROM binome.scorecard_days r
JOIN binome.rollup_state s ON s.site = r.site AND r.day <= s.rolled_through
WHERE r.day >= (now() AT TIME ZONE 'UTC')::date - 28
ON CONFLICT DO NOTHING;
UPDATE binome.live_snapshots SET valid_until = least(valid_until, now());
