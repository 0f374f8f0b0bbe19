-- The key of APPEND_LOCK (tracker/store/locks.py), written once for SQL; tests/test_schema.py checks that the
-- two agree. `append_events` takes it, and so does the COPY path of tracker/store/event_log.py: appends
-- serialise, so positions commit in increasing order. IMMUTABLE: a call is folded to the constant when planned.
CREATE OR REPLACE FUNCTION tracker_append_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x'747261636B02'::bigint $$;
