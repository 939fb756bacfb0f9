-- The keys of the session pseudonyms (issue 20; collector/session_keys.py).
--
-- The stored `sid` of a page view is HMAC-SHA256(key of its UTC day, site, day,
-- the tab's session id). One random key per day, shared by every collector
-- process of this database: the first to need a day's key proposes one, and
-- binome.session_key() keeps the first proposal (sql/functions/60_session_keys.sql).
-- Once a day is over and its late beacons can no longer arrive (the end of the
-- next UTC day), `binome maintain` deletes its key: from then on nobody, the
-- operator included, can recompute a stored pseudonym from a session id.
--
-- No role but the owner reads or writes the table: the collector (binome_writer)
-- gets the keys it needs through the definer's function, and binome_analyst never.
CREATE TABLE binome.session_keys (
    day        date PRIMARY KEY,
    key        bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON binome.session_keys FROM PUBLIC;
