-- 0007: the collector's page views folded behind its writes, not inside them.
--
-- Why: folding a batch's page views (binome.refold_page_views) costs
-- PostgreSQL several times what storing its beacons does (docs/performance.md).
-- Inside the writer's transaction, that cost paced ingest: when the fold fell
-- behind, the collector's queue filled and beacons were refused (503). Now a
-- connection that sets binome.defer_fold = on (the collector's writer does)
-- only queues the page views it stored, in the same transaction as the
-- beacons; the collector's folder (collector/folder.py) folds the queue right
-- after, in sets of thousands, and `binome maintain` folds what is left before
-- it closes days. A page view's beacons queued twice before its fold (seq 0,
-- then seq 1 at pagehide) are folded once.
--
-- What it costs readers: the analyst views show a stored beacon once it is
-- folded, a few milliseconds after it is written while the folder keeps up
-- (binome_fold_lag_seconds on /metrics says when it does not). Any other
-- writer (a COPY by an administrator, bench/views.py) still folds as it
-- inserts, as before.
--
-- If the folder is late when a day closes, nothing is lost: a page view
-- folded after its day was rolled up marks the day dirty (0002), and the
-- next maintenance run rolls it up again.
CREATE TABLE binome.fold_queue (
    site       text COLLATE "C" NOT NULL,
    pv         text NOT NULL,
    first_day  date NOT NULL,
    last_day   date NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, pv)
);

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

-- Fold up to p_limit queued page views, in one transaction. Returns how many
-- it folded and how long the oldest of them had waited (NULL when none).
-- Folders of several collectors take different rows (SKIP LOCKED); the fold
-- lock then runs their folds one after the other, as before.
CREATE FUNCTION binome.fold_queued(p_limit integer, OUT folded integer, OUT oldest interval)
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

REVOKE EXECUTE ON FUNCTION binome.fold_queued(integer) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT EXECUTE ON FUNCTION binome.fold_queued(integer) TO binome_writer;
        -- `binome maintain` counts what is queued before it folds it.
        GRANT SELECT ON binome.fold_queue TO binome_writer;
    END IF;
END
$$;
