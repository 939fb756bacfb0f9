-- The day keys of the session pseudonyms (sql/migrations/0002_session_keys.sql,
-- collector/session_keys.py). SECURITY DEFINER so that binome_writer reaches
-- them only through these two functions, never the table.

-- The key of UTC day p_day: the stored one, or p_proposed (32 random bytes from
-- the calling collector) when none is stored yet; the first proposal wins a
-- race. Only for the days beacons may still be pseudonymised for (yesterday,
-- today, tomorrow, in UTC): NULL for any other day, so that no caller can make a
-- key exist for a day that is over, or read one that should be gone.
CREATE OR REPLACE FUNCTION binome.session_key(p_day date, p_proposed bytea)
RETURNS bytea
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    stored bytea;
BEGIN
    IF p_day IS NULL OR p_day < today - 1 OR p_day > today + 1 THEN
        RETURN NULL;
    END IF;
    IF octet_length(p_proposed) IS DISTINCT FROM 32 THEN
        RAISE EXCEPTION 'a session key is 32 bytes' USING ERRCODE = '22023';
    END IF;
    INSERT INTO binome.session_keys (day, key) VALUES (p_day, p_proposed)
    ON CONFLICT (day) DO NOTHING;
    SELECT key INTO stored FROM binome.session_keys WHERE day = p_day;
    RETURN stored;
END
$fn$;

-- Delete the keys of the days whose beacons can no longer be pseudonymised:
-- before yesterday (UTC). Takes no cutoff, so that no caller can delete a key
-- still in use. Returns how many were deleted.
CREATE OR REPLACE FUNCTION binome.forget_session_keys()
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM binome.session_keys WHERE day < (now() AT TIME ZONE 'UTC')::date - 1;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$fn$;

REVOKE EXECUTE ON FUNCTION binome.session_key(date, bytea), binome.forget_session_keys()
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'binome_writer') THEN
        GRANT EXECUTE ON FUNCTION binome.session_key(date, bytea), binome.forget_session_keys()
            TO binome_writer;
    END IF;
END
$$;
