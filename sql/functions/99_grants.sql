-- Who may call what. Every function that writes is revoked from PUBLIC: the
-- definer's functions run as the schema's owner. binome_writer (the collector,
-- docs/deploy.md "Roles") gets those it calls; binome_maintainer (`binome maintain`, a
-- member of binome_writer) gets retention besides, which the writer may not run
-- (issue 20: it would drop every day); the views' grants are in
-- sql/views/99_grants.sql. Given again at every migrate, so an administrator
-- who creates the roles after the first migrate gets them too.
REVOKE EXECUTE ON FUNCTION binome.ensure_beacon_partition(date), binome.apply_retention(date),
    binome.refold_page_views(text[], text[], date[], date[]), binome.refold_days(date, date),
    binome.fold_inserted_beacons(), binome.fold_queued(integer),
    binome.close_days(date), binome.write_rollup(text, date), binome.rollup_day(text, date),
    binome.campaign_bins_of(text, date),
    binome.resum_release_bins(text[], text[]), binome.release_day_bins_changed(),
    binome.rolled_through_moved(), binome.scorecard_days_changed(),
    binome.snapshot_live_day(text, date, interval), binome.refresh_live_snapshots(bigint, interval),
    binome.forget_ingest_rejections()
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT EXECUTE ON FUNCTION binome.ensure_beacon_partition(date), binome.fold_queued(integer),
            binome.close_days(date), binome.rollup_day(text, date),
            binome.refresh_live_snapshots(bigint, interval),
            -- `binome maintain` deletes refused-beacon counts past their 7 days.
            binome.forget_ingest_rejections()
            TO binome_writer;
        -- A database migrated by an earlier checkout had granted it: take it back.
        REVOKE EXECUTE ON FUNCTION binome.apply_retention(date) FROM binome_writer;
    END IF;
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_maintainer') THEN
        GRANT EXECUTE ON FUNCTION binome.apply_retention(date) TO binome_maintainer;
    END IF;
END
$$;
