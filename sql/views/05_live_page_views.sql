-- binome.live_page_views — internal, grain: one row per page view.
--
-- The page views (binome.page_view_facts) the grouped views compute live,
-- i.e. those of every (site, day) not read from a rollup: days after the
-- site's rolled_through (today, and any day `binome maintain` has not closed
-- yet) without a fresh snapshot (sql/functions/50_live_snapshots.sql: a busy live day is read
-- from its snapshot), and rolled-up days marked dirty because a page view of
-- theirs changed since (a late beacon, a session that went on). A dirty day
-- is always <= rolled_through and a snapshot's day after it, so no page view
-- is both live and in a rollup the views read (binome.rollup_excluded is the
-- other side). The binome.*_live views aggregate this; `binome maintain`
-- fills the rollups (binome.*_days) from those same views, so a day reads the
-- same before and after its rollup.

-- One site-day's page_view_facts, planned with the day as a constant: the plan
-- holds that day's partition only, and reads that site's rows of it. Read
-- in the view, the partitioned table would be planned with every partition
-- of the retention (25 months: about 760) in every query of the views, once
-- per live branch. SECURITY DEFINER: the analyst role cannot read binome's
-- tables (sql/views/99_grants.sql grants it this function, not PUBLIC). It
-- answers only a caller that passes binome.live_facts_key, which the view
-- below reads as its owner: the analyst reads the grouped views over it but
-- cannot call it for the page views' rows (sql/migrations/0003_maintainer.sql).
-- (date) and (text, date) are the signatures of an earlier schema's versions.
DROP FUNCTION IF EXISTS binome.page_view_facts_of(date) CASCADE;
DROP FUNCTION IF EXISTS binome.page_view_facts_of(text, date) CASCADE;
CREATE OR REPLACE FUNCTION binome.page_view_facts_of(p_site text, p_day date, p_key uuid)
RETURNS SETOF binome.page_view_facts
LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
-- A live day holds up to BINOME_LIVE_SNAPSHOT_PAGE_VIEWS page views (25,000)
-- before the views read it from its snapshot.
ROWS 25000 AS $$
BEGIN
    IF p_key IS DISTINCT FROM (SELECT key FROM binome.live_facts_key) THEN
        RAISE EXCEPTION 'permission denied for function page_view_facts_of'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- EXECUTE: planned for this day at each call, never as a generic plan
    -- over every partition.
    RETURN QUERY EXECUTE 'SELECT * FROM binome.page_view_facts WHERE day = $1 AND site = $2'
        USING p_day, p_site;
END
$$;
REVOKE EXECUTE ON FUNCTION binome.page_view_facts_of(text, date, uuid) FROM PUBLIC;

DROP VIEW IF EXISTS binome.live_page_views CASCADE;
CREATE VIEW binome.live_page_views AS
-- binome.page_view_facts' columns, in its order, but `site` and `day` are the
-- live site-day's: a query for one site or day (binome.write_rollup's)
-- filters the live site-days on them, so the other days' partitions and the
-- other sites' rows are not read. Each live site-day is read on its own, by
-- binome.page_view_facts_of. A column added to page_view_facts is added here too.
SELECT live_days.site COLLATE "C" AS site, live_days.day, f.pv, f.sid, f.received_at,
       f.consent, f.path, f.release, f.device_class, f.country, f.lcp, f.inp, f.cls, f.fcp, f.ttfb, f.converted, f.revenue,
       f.is_landing, f.session_channel, f.session_campaign, f.session_page_views,
       f.session_converted, f.session_revenue, f.group_channel, f.group_campaign,
       f.first_in_group, f.first_in_release
FROM binome.live_days() AS live_days
CROSS JOIN binome.live_facts_key AS k
CROSS JOIN LATERAL binome.page_view_facts_of(live_days.site, live_days.day, k.key) AS f;
