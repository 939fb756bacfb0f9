-- Who may call what. Every function that writes is revoked from PUBLIC: the
-- definer's functions run as the schema's owner. binome_writer (the collector,
-- README "Roles") gets those it calls; the views' grants are in
-- sql/views/99_grants.sql. Given again at every migrate, so an administrator
-- who creates the roles after the first migrate gets them too.
REVOKE EXECUTE ON FUNCTION binome.ensure_beacon_partition(date), binome.apply_retention(date),
    binome.refold_page_views(text[], text[], date[], date[]), binome.refold_days(date, date),
    binome.fold_inserted_beacons(), binome.fold_queued(integer),
    binome.close_days(date), binome.write_rollup(text, date), binome.rollup_day(text, date),
    binome.campaign_bins_of(text, date),
    binome.resum_release_bins(text[], text[]), binome.release_day_bins_changed(),
    binome.rolled_through_moved(), binome.scorecard_days_changed(),
    binome.snapshot_live_day(text, date, interval), binome.refresh_live_snapshots(bigint, interval)
    FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT EXECUTE ON FUNCTION binome.ensure_beacon_partition(date), binome.fold_queued(integer),
            binome.close_days(date), binome.rollup_day(text, date), binome.apply_retention(date),
            binome.refresh_live_snapshots(bigint, interval)
            TO binome_writer;
    END IF;
END
$$;
