-- The fold: a page view's beacons into its row of binome.page_views and
-- binome.page_view_facts, with what its session says about it, so that the
-- views never fold raw beacons at query time. Run by the trigger on
-- binome.beacons in the writing transaction, or queued when the connection sets
-- binome.defer_fold = on (the collector's writer) and folded right after by
-- collector/folder.py, and by `binome maintain` before it closes days.
--
-- What a page view's row says (docs/beacon-format.md, "Views"):
--   * each metric's final value is the one of the highest seq that reported it,
--     whatever order the beacons arrived in;
--   * consent is that of the highest seq: the visitor's latest decision; the
--     marketing columns are NULL unless it is 'marketing';
--   * path, utm_* and channel come from the lowest seq that carries them;
--     device_class, browser, os and country from the first beacon; release and
--     dims from the latest that has them; nav from the first that has it;
--   * day is the earliest of its beacons' days, received_at the first receive.
-- A page view's beacons are re-read from raw (not merged into the old row), so
-- the fold has one definition whatever the order and grouping of the writes;
-- tests/test_fold_equivalence.py checks it against a plain reference fold
-- (tests/reference_fold.sql). All folds are serialised by one
-- transaction-level advisory lock: a fold always sees the beacons and page
-- views of every fold before it, and two collectors writing beacons of one
-- session never each miss the other's. Rolled-up days whose page views change
-- are marked dirty, so the views compute them live until rolled up again.

-- Fold these page views (their beacons between the given days, and the days of
-- their earlier beacons). Returns how many it folded. How it stays cheap:
--   * one window over each page view finds, per column, the seq whose value
--     wins, and one pass takes the value at that seq (no sort per aggregate);
--   * each page_view_facts row is written once, by INSERT ... ON CONFLICT, which
--     touches only the partitions of the rows it writes;
--   * a session's columns are recomputed only when something they depend on
--     changed (binome.fold_session_inputs); a page view's later beacons mostly
--     bring metrics only;
--   * every lookup by key is forced to stay an index lookup (OFFSET 0), and each
--     statement is planned for the call (plan_cache_mode): a plan kept from the
--     first calls, while page_views was nearly empty, could read a whole site
--     per lookup; day bounds as literals keep only those partitions;
--   * jit off: compiling the plan would cost a small batch more than running it.
CREATE OR REPLACE FUNCTION binome.refold_page_views(
    p_sites text[], p_pvs text[], p_first_days date[], p_last_days date[]
) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET jit = off
SET plan_cache_mode = force_custom_plan AS $fn$
DECLARE
    t_sites text[]; t_pvs text[]; t_days date[];  -- (page view, day) to read
    lo date; hi date;
    o_rows binome.fold_session_inputs[];    -- the page views folded before, as they were
    o_sites text[]; o_days date[];
    n_sites text[]; n_pvs text[]; n_days date[];  -- the page views folded now
    s_sites text[]; s_sids text[];          -- sessions to recompute
    m_sites text[]; m_pvs text[]; m_days date[];  -- facts rows a move left behind
    u_sites text[]; u_days date[];          -- other page views whose session changed
    folded integer;
BEGIN
    PERFORM pg_advisory_xact_lock(7020508655466053939);  -- 'binome.fold'

    INSERT INTO binome.rollup_state (site)
    SELECT DISTINCT s FROM unnest(p_sites) AS s
    ON CONFLICT DO NOTHING;

    -- The page views to fold, each with the days to read (the new beacons' and
    -- those of the beacons folded before), and what their sessions depend on
    -- as it was.
    WITH t AS (
        SELECT u.site, u.pv, p.old,
               least(u.first_day, (p.old).day) AS first_day,
               greatest(u.last_day, p.last_day) AS last_day
        FROM (SELECT site, pv, min(first_day) AS first_day, max(last_day) AS last_day
                FROM unnest(p_sites, p_pvs, p_first_days, p_last_days)
                     AS u(site, pv, first_day, last_day)
               GROUP BY site, pv) AS u
        -- One index lookup per page view (OFFSET 0 keeps it a lookup).
        LEFT JOIN LATERAL (
            SELECT ROW(p.site, p.pv, p.sid, p.day, p.t0, p.received_at, p.consent, p.channel,
                       p.utm_campaign, p.converted, p.revenue, p.release, p.device_class,
                       p.country)::binome.fold_session_inputs AS old,
                   p.last_day
            FROM binome.page_views p
            WHERE p.site = u.site AND p.pv = u.pv OFFSET 0
        ) AS p ON true
    ), w AS (
        SELECT t.site, t.pv, d::date AS day
        FROM t CROSS JOIN LATERAL generate_series(t.first_day, t.last_day, interval '1 day') AS d
    )
    SELECT w.sites, w.pvs, w.days, w.lo, w.hi, o.rows, o.sites, o.days
      INTO t_sites, t_pvs, t_days, lo, hi, o_rows, o_sites, o_days
      FROM (SELECT array_agg(site) AS sites, array_agg(pv) AS pvs, array_agg(day) AS days,
                   min(day) AS lo, max(day) AS hi
              FROM w) AS w,
           (SELECT array_agg(old) AS rows, array_agg((old).site) AS sites,
                   array_agg((old).day) AS days
              FROM t WHERE (old).pv IS NOT NULL) AS o;
    IF t_sites IS NULL THEN
        RETURN 0;
    END IF;

    -- Fold and store the page views. Day bounds as literals let the planner
    -- keep only those partitions; each page view is then looked up by (site,
    -- day, pv), the primary key's prefix.
    EXECUTE format($q$
        WITH wanted AS (
            SELECT * FROM unnest($1::text[], $2::text[], $3::date[]) AS w(site, pv, day)
        ), beacons AS (
            -- Per page view, the seq whose value each column takes.
            SELECT b.*,
                min(b.seq) OVER pv AS s_first,
                max(b.seq) OVER pv AS s_last,
                max(b.seq) FILTER (WHERE b.sid IS NOT NULL) OVER pv AS s_sid,
                min(b.seq) FILTER (WHERE b.channel IS NOT NULL) OVER pv AS s_channel,
                min(b.seq) FILTER (WHERE b.ref_origin IS NOT NULL) OVER pv AS s_ref_origin,
                min(b.seq) FILTER (WHERE b.consent = 'marketing') OVER pv AS s_marketing,
                max(b.seq) FILTER (WHERE b.release IS NOT NULL) OVER pv AS s_release,
                max(b.seq) FILTER (WHERE b.dims IS NOT NULL) OVER pv AS s_dims,
                max(b.seq) FILTER (WHERE b.device IS NOT NULL) OVER pv AS s_device,
                min(b.seq) FILTER (WHERE b.nav IS NOT NULL) OVER pv AS s_nav,
                max(b.seq) FILTER (WHERE b.lcp IS NOT NULL) OVER pv AS s_lcp,
                max(b.seq) FILTER (WHERE b.inp IS NOT NULL) OVER pv AS s_inp,
                max(b.seq) FILTER (WHERE b.cls IS NOT NULL) OVER pv AS s_cls,
                max(b.seq) FILTER (WHERE b.fcp IS NOT NULL) OVER pv AS s_fcp,
                max(b.seq) FILTER (WHERE b.ttfb IS NOT NULL) OVER pv AS s_ttfb
            FROM wanted w
            -- One index lookup per page view and day, never a scan of a day's
            -- partition (OFFSET 0 keeps the planner from turning it into a join).
            CROSS JOIN LATERAL (
                SELECT b.site, b.pv, b.seq, b.day, b.received_at, b.t0, b.sid, b.consent,
                       b.path, b.channel, b.ref_origin, b.utm_source, b.utm_medium,
                       b.utm_campaign, b.utm_term, b.utm_content, b.device_class, b.browser,
                       b.os, b.country, b.release, b.dims, b.device, b.nav,
                       b.lcp, b.inp, b.cls, b.fcp, b.ttfb, b.event_count, b.revenue
                FROM binome.beacons b
                WHERE b.site = w.site AND b.day = w.day AND b.pv = w.pv
                  AND b.day BETWEEN %L AND %L
                OFFSET 0
            ) AS b
            WINDOW pv AS (PARTITION BY b.site, b.pv)
        ), folded AS (
            SELECT
                site,
                pv,
                min(day) AS day,
                max(day) AS last_day,
                min(received_at) AS received_at,
                min(t0) AS t0,
                min(sid) FILTER (WHERE seq = s_sid) AS sid,
                min(consent) FILTER (WHERE seq = s_last) AS consent,
                min(path) FILTER (WHERE seq = s_first) AS path,
                min(channel) FILTER (WHERE seq = s_channel) AS channel,
                min(ref_origin) FILTER (WHERE seq = s_ref_origin) AS ref_origin,
                min(utm_source) FILTER (WHERE seq = s_marketing) AS utm_source,
                min(utm_medium) FILTER (WHERE seq = s_marketing) AS utm_medium,
                min(utm_campaign) FILTER (WHERE seq = s_marketing) AS utm_campaign,
                min(utm_term) FILTER (WHERE seq = s_marketing) AS utm_term,
                min(utm_content) FILTER (WHERE seq = s_marketing) AS utm_content,
                min(device_class) FILTER (WHERE seq = s_first) AS device_class,
                min(browser) FILTER (WHERE seq = s_first) AS browser,
                min(os) FILTER (WHERE seq = s_first) AS os,
                min(country) FILTER (WHERE seq = s_first) AS country,
                min(release) FILTER (WHERE seq = s_release) AS release,
                (array_agg(dims) FILTER (WHERE seq = s_dims))[1] AS dims,
                (array_agg(device) FILTER (WHERE seq = s_device))[1] AS device,
                (array_agg(nav) FILTER (WHERE seq = s_nav))[1] AS nav,
                min(lcp) FILTER (WHERE seq = s_lcp) AS lcp,
                min(inp) FILTER (WHERE seq = s_inp) AS inp,
                min(cls) FILTER (WHERE seq = s_cls) AS cls,
                min(fcp) FILTER (WHERE seq = s_fcp) AS fcp,
                min(ttfb) FILTER (WHERE seq = s_ttfb) AS ttfb,
                sum(event_count) AS event_count,
                sum(revenue) AS revenue,
                count(*) AS beacons
            FROM beacons
            GROUP BY site, pv
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
            RETURNING p.site, p.pv, p.sid, p.day, p.t0, p.received_at, p.consent, p.channel,
                      p.utm_campaign, p.converted, p.revenue, p.release, p.device_class,
                      p.country, p.path, p.lcp, p.inp, p.cls, p.fcp, p.ttfb
        ), compared AS (
            -- What a session's columns depend on (the facts statement below), before
            -- and after.
            SELECT s.*, old.sid AS old_sid, old.day AS old_day,
                   old.pv IS NULL
                   OR (s.sid, s.day, s.t0, s.received_at, s.consent, s.channel, s.utm_campaign,
                       s.converted, s.revenue, s.release, s.device_class, s.country)
                      IS DISTINCT FROM
                      (old.sid, old.day, old.t0, old.received_at, old.consent, old.channel,
                       old.utm_campaign, old.converted, old.revenue, old.release,
                       old.device_class, old.country) AS session_changed
            FROM stored s
            LEFT JOIN unnest($4::binome.fold_session_inputs[]) AS old
                   ON old.site = s.site AND old.pv = s.pv
        ), recompute AS (
            -- Sessions whose columns must be computed again: the old session of a
            -- page view that left it, too.
            SELECT site, sid FROM compared WHERE session_changed
            UNION
            SELECT site, old_sid FROM compared WHERE old_sid <> sid
        ), alone AS (
            -- Folded page views of the other sessions: their own columns in
            -- page_view_facts, their session's as they are.
            INSERT INTO binome.page_view_facts AS f (
                site, day, pv, sid, received_at, consent, path, release, device_class, country,
                lcp, inp, cls, fcp, ttfb, converted, revenue)
            SELECT c.site, c.day, c.pv, c.sid, c.received_at, c.consent, c.path, c.release,
                   c.device_class, c.country, c.lcp, c.inp, c.cls, c.fcp, c.ttfb, c.converted,
                   c.revenue
            FROM compared c
            WHERE NOT EXISTS (SELECT FROM recompute r WHERE r.site = c.site AND r.sid = c.sid)
            ORDER BY c.site, c.day, c.pv
            ON CONFLICT (site, day, pv) DO UPDATE SET
                sid = excluded.sid, received_at = excluded.received_at,
                consent = excluded.consent, path = excluded.path, release = excluded.release,
                device_class = excluded.device_class, country = excluded.country,
                lcp = excluded.lcp, inp = excluded.inp, cls = excluded.cls, fcp = excluded.fcp,
                ttfb = excluded.ttfb, converted = excluded.converted, revenue = excluded.revenue
        )
        SELECT count(*)::int, array_agg(site), array_agg(pv), array_agg(day),
               (SELECT array_agg(site) FROM recompute), (SELECT array_agg(sid) FROM recompute),
               array_agg(site) FILTER (WHERE old_day <> day),
               array_agg(pv) FILTER (WHERE old_day <> day),
               array_agg(old_day) FILTER (WHERE old_day <> day)
        FROM compared
    $q$, lo, hi)
    INTO folded, n_sites, n_pvs, n_days, s_sites, s_sids, m_sites, m_pvs, m_days
    USING t_sites, t_pvs, t_days, o_rows;

    -- A page view whose day moved (a beacon with an earlier day) leaves its old
    -- facts row behind: remove it (rare; the days as literals prune partitions).
    IF m_pvs IS NOT NULL THEN
        EXECUTE format($q$
            DELETE FROM binome.page_view_facts f
            USING unnest($1::text[], $2::text[], $3::date[]) AS o(site, pv, day)
            WHERE f.site = o.site AND f.day = o.day AND f.pv = o.pv
              AND f.day BETWEEN %L AND %L
        $q$, (SELECT min(d) FROM unnest(m_days) AS d), (SELECT max(d) FROM unnest(m_days) AS d))
        USING m_sites, m_pvs, m_days;
    END IF;

    -- What each page view's session says about it (rum.sessions' definitions),
    -- for the sessions whose inputs changed: the landing page view is the first
    -- by t0 (the client's clock, one clock within a session), then by receive
    -- time (docs/beacon-format.md, "Definitions"). Then page_view_facts: a
    -- folded page view's row is written with its own columns, and with its
    -- session's when they differ from the stored ones; another page view's row
    -- when its session's columns differ.
    IF s_sites IS NOT NULL THEN
        WITH sessions AS (
            SELECT DISTINCT u.site, u.sid FROM unnest(s_sites, s_sids) AS u(site, sid)
        ), refolded AS (
            SELECT u.site, u.pv FROM unnest(n_sites, n_pvs) AS u(site, pv)
        ), members AS (
            -- Index lookups (OFFSET 0 keeps them so whatever the statistics say).
            SELECT p.*
            FROM sessions s
            CROSS JOIN LATERAL (
                SELECT p.site, p.day, p.pv, p.sid, p.received_at, p.consent, p.path, p.release,
                       p.device_class, p.country, p.lcp, p.inp, p.cls, p.fcp, p.ttfb, p.converted,
                       p.revenue, p.t0, p.channel, p.utm_campaign
                FROM binome.page_views p
                WHERE p.site = s.site AND p.sid = s.sid
                OFFSET 0
            ) AS p
        ), per_session AS (
            SELECT m.*,
                first_value(m.pv) OVER ordered AS landing_pv,
                first_value(CASE WHEN m.consent = 'marketing' THEN coalesce(m.channel, '(none)')
                                 ELSE '(no consent)' END) OVER ordered AS session_channel,
                first_value(CASE WHEN m.consent = 'marketing' THEN coalesce(m.utm_campaign, '(none)')
                                 ELSE '(no consent)' END) OVER ordered AS session_campaign,
                count(*) OVER whole AS session_page_views,
                bool_or(coalesce(m.converted, false)) OVER whole AS session_converted,
                sum(m.revenue) OVER whole AS session_revenue
            FROM members m
            WINDOW whole AS (PARTITION BY m.site, m.sid),
                   ordered AS (PARTITION BY m.site, m.sid ORDER BY m.t0 NULLS LAST, m.received_at, m.pv)
        ), derived AS (
            SELECT d.*,
                d.pv = d.landing_pv AS is_landing,
                CASE WHEN d.consent = 'marketing' THEN d.session_channel ELSE '(no consent)' END AS group_channel,
                CASE WHEN d.consent = 'marketing' THEN d.session_campaign ELSE '(no consent)' END AS group_campaign
            FROM per_session d
        ), flagged AS (
            SELECT d.*,
                row_number() OVER (
                    PARTITION BY site, sid, day, group_channel, group_campaign,
                                 coalesce(device_class, '(none)'), coalesce(country, '(none)')
                    ORDER BY pv) = 1 AS first_in_group,
                consent = 'marketing' AND row_number() OVER (
                    PARTITION BY site, sid, coalesce(release, '(none)'), consent = 'marketing'
                    ORDER BY day, pv) = 1 AS first_in_release,
                (site, pv) IN (SELECT site, pv FROM refolded) AS refolded
            FROM derived d
        ), own AS (
            -- Folded page views of recomputed sessions.
            INSERT INTO binome.page_view_facts AS f (
                site, day, pv, sid, received_at, consent, path, release, device_class, country,
                lcp, inp, cls, fcp, ttfb, converted, revenue,
                is_landing, session_channel, session_campaign, session_page_views,
                session_converted, session_revenue, group_channel, group_campaign,
                first_in_group, first_in_release)
            SELECT site, day, pv, sid, received_at, consent, path, release, device_class, country,
                   lcp, inp, cls, fcp, ttfb, converted, revenue,
                   is_landing, session_channel, session_campaign, session_page_views,
                   session_converted, session_revenue, group_channel, group_campaign,
                   first_in_group, first_in_release
            FROM flagged
            WHERE refolded
            ORDER BY site, day, pv
            ON CONFLICT (site, day, pv) DO UPDATE SET
                sid = excluded.sid, received_at = excluded.received_at,
                consent = excluded.consent, path = excluded.path, release = excluded.release,
                device_class = excluded.device_class, country = excluded.country,
                lcp = excluded.lcp, inp = excluded.inp, cls = excluded.cls, fcp = excluded.fcp,
                ttfb = excluded.ttfb, converted = excluded.converted, revenue = excluded.revenue,
                is_landing = excluded.is_landing, session_channel = excluded.session_channel,
                session_campaign = excluded.session_campaign,
                session_page_views = excluded.session_page_views,
                session_converted = excluded.session_converted,
                group_channel = excluded.group_channel, group_campaign = excluded.group_campaign,
                first_in_group = excluded.first_in_group, first_in_release = excluded.first_in_release,
                -- The session's columns are written only when one differs: a revenue
                -- equal in value and not in scale (49.9, 49.90) stays as stored.
                session_revenue = CASE
                    WHEN (f.is_landing, f.session_channel, f.session_campaign,
                          f.session_page_views, f.session_converted, f.session_revenue,
                          f.group_channel, f.group_campaign, f.first_in_group, f.first_in_release)
                         IS DISTINCT FROM
                         (excluded.is_landing, excluded.session_channel, excluded.session_campaign,
                          excluded.session_page_views, excluded.session_converted,
                          excluded.session_revenue, excluded.group_channel, excluded.group_campaign,
                          excluded.first_in_group, excluded.first_in_release)
                    THEN excluded.session_revenue ELSE f.session_revenue END
        ), others AS (
            -- The other page views of recomputed sessions, when their session's columns changed.
            INSERT INTO binome.page_view_facts AS f (
                site, day, pv, sid, received_at, consent, path, release, device_class, country,
                lcp, inp, cls, fcp, ttfb, converted, revenue,
                is_landing, session_channel, session_campaign, session_page_views,
                session_converted, session_revenue, group_channel, group_campaign,
                first_in_group, first_in_release)
            SELECT site, day, pv, sid, received_at, consent, path, release, device_class, country,
                   lcp, inp, cls, fcp, ttfb, converted, revenue,
                   is_landing, session_channel, session_campaign, session_page_views,
                   session_converted, session_revenue, group_channel, group_campaign,
                   first_in_group, first_in_release
            FROM flagged
            WHERE NOT refolded
            ORDER BY site, day, pv
            ON CONFLICT (site, day, pv) DO UPDATE SET
                is_landing = excluded.is_landing, session_channel = excluded.session_channel,
                session_campaign = excluded.session_campaign,
                session_page_views = excluded.session_page_views,
                session_converted = excluded.session_converted,
                session_revenue = excluded.session_revenue,
                group_channel = excluded.group_channel, group_campaign = excluded.group_campaign,
                first_in_group = excluded.first_in_group, first_in_release = excluded.first_in_release
            WHERE (f.is_landing, f.session_channel, f.session_campaign, f.session_page_views,
                   f.session_converted, f.session_revenue, f.group_channel, f.group_campaign,
                   f.first_in_group, f.first_in_release)
                  IS DISTINCT FROM
                  (excluded.is_landing, excluded.session_channel, excluded.session_campaign,
                   excluded.session_page_views, excluded.session_converted,
                   excluded.session_revenue, excluded.group_channel, excluded.group_campaign,
                   excluded.first_in_group, excluded.first_in_release)
            RETURNING f.site, f.day
        )
        SELECT array_agg(site), array_agg(day) INTO u_sites, u_days FROM others;
    END IF;

    -- Rolled-up days whose page views changed are computed live until rolled
    -- up again: the days of the folded page views, before and after, and those
    -- of the other page views whose session changed.
    INSERT INTO binome.rollup_dirty AS d (site, day)
    SELECT DISTINCT c.site, c.day
    FROM unnest(coalesce(o_sites, '{}') || n_sites || coalesce(u_sites, '{}'),
                coalesce(o_days, '{}') || n_days || coalesce(u_days, '{}')) AS c(site, day)
    JOIN binome.rollup_state s ON s.site = c.site AND c.day <= s.rolled_through
    ORDER BY 1, 2
    ON CONFLICT (site, day) DO UPDATE SET version = d.version + 1, marked_at = now();

    RETURN folded;
END
$fn$;

-- Fold again every page view with a beacon between two days (backfill, bench).
CREATE OR REPLACE FUNCTION binome.refold_days(p_from date, p_to date) RETURNS integer
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
-- key folds nothing. With binome.defer_fold = on it only queues the page views,
-- in the writer's transaction (folding there paced ingest).
CREATE OR REPLACE FUNCTION binome.fold_inserted_beacons() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    sites text[]; pvs text[]; firsts date[]; lasts date[];
BEGIN
    IF current_setting('binome.defer_fold', true) = 'on' THEN
        INSERT INTO binome.fold_queue AS q (site, pv, first_day, last_day)
        SELECT site, pv, min(day), max(day) FROM inserted_beacons GROUP BY site, pv
        ORDER BY site, pv  -- one lock order for every writer
        ON CONFLICT (site, pv) DO UPDATE
            SET first_day = least(q.first_day, excluded.first_day),
                last_day = greatest(q.last_day, excluded.last_day);
        RETURN NULL;
    END IF;
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

CREATE OR REPLACE TRIGGER fold_page_views
    AFTER INSERT ON binome.beacons
    REFERENCING NEW TABLE AS inserted_beacons
    FOR EACH STATEMENT EXECUTE FUNCTION binome.fold_inserted_beacons();

-- Fold up to p_limit queued page views, in one transaction. Returns how many
-- it folded and how long the oldest of them had waited (NULL when none).
-- Folders of several collectors take different rows (SKIP LOCKED); the fold
-- lock then runs their folds one after the other.
CREATE OR REPLACE FUNCTION binome.fold_queued(p_limit integer, OUT folded integer, OUT oldest interval)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    sites text[]; pvs text[]; firsts date[]; lasts date[];
BEGIN
    WITH taken AS (
        DELETE FROM binome.fold_queue q
        WHERE q.ctid = ANY (ARRAY(
            SELECT ctid FROM binome.fold_queue LIMIT p_limit FOR UPDATE SKIP LOCKED))
        RETURNING q.site, q.pv, q.first_day, q.last_day, q.queued_at
    )
    SELECT array_agg(site ORDER BY site, pv), array_agg(pv ORDER BY site, pv),
           array_agg(first_day ORDER BY site, pv), array_agg(last_day ORDER BY site, pv),
           count(*), clock_timestamp() - min(queued_at)
      INTO sites, pvs, firsts, lasts, folded, oldest
      FROM taken;
    IF folded > 0 THEN
        PERFORM binome.refold_page_views(sites, pvs, firsts, lasts);
    END IF;
END
$fn$;
