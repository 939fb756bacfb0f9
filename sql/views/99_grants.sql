-- Grants on views, given again after every migrate re-creates them (a dropped
-- view loses its grants). The roles come from sql/migrations/0003_roles.sql.
GRANT SELECT ON binome.beacon_columns TO binome_writer;
GRANT USAGE ON SCHEMA rum TO binome_analyst;
GRANT SELECT ON ALL TABLES IN SCHEMA rum TO binome_analyst;
GRANT EXECUTE ON FUNCTION rum.p75_from_histogram(float8, float8, bigint) TO binome_analyst;
