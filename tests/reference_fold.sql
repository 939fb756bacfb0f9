-- The fold as first written: binome.refold_page_views by 25 array_agg(... ORDER
-- BY seq) per page view, with every touched session recomputed and its facts
-- rows updated when they differ. Straightforward and correct by definition;
-- tests/test_fold_equivalence.py installs it in a second database in place of
-- sql/functions/30_fold.sql's and checks that both store exactly the same.
CREATE OR REPLACE FUNCTION binome.refold_page_views(
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
    -- within a session), then by receive time (docs/beacon-format.md, "Definitions").
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
