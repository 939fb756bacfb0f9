-- binome.beacon_columns — internal: the columns of binome.beacons, and never a row.
--
-- The collector stages each batch in CREATE TEMP TABLE ... (LIKE
-- binome.beacon_columns) (collector/writer.py). LIKE needs SELECT on its model;
-- granted on this view rather than on binome.beacons, it lets binome_writer
-- shape its staging table without reading a stored beacon. Re-created on
-- every migrate, so it follows binome.beacons' columns.
DROP VIEW IF EXISTS binome.beacon_columns;
CREATE VIEW binome.beacon_columns AS
SELECT * FROM binome.beacons WHERE false;
