-- The key of HEALTH_LOCK (tracker/store/locks.py), written once for SQL; tests/test_schema.py checks that the
-- two agree. Every trigger on the view tables takes it first, and so do the projection runners before a batch
-- and a rebuild before its switch-over: the three read models write one at a time, so an installation never
-- reads a connection's or a destination's row that a concurrent commit changes, and the change feed's `seq`
-- is stamped in commit order (stamp_view_changes.sql). IMMUTABLE: a call is folded to the constant when planned.
CREATE OR REPLACE FUNCTION tracker_health_lock() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT x'747261636B03'::bigint $$;
