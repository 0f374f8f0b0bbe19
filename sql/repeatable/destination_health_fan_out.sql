-- Destinations inserted or deleted by their runner (`changed`: the new rows, or the old ones): recompute
-- the installations naming the disabled ones, as only a disabled destination can change an installation's
-- flag. `HAVING` leaves no row to PERFORM on when none is disabled: an aggregate over no rows still returns
-- one row, of NULL arrays, and the call still planned its join over installation_view (14 ms a write of a
-- destination with 100,000 installations).
CREATE OR REPLACE FUNCTION destination_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    PERFORM recompute_destination_disabled(array_agg(project_id), array_agg(destination_name))
    FROM changed WHERE disabled
    HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER destination_health_on_insert AFTER INSERT ON destination_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE OR REPLACE TRIGGER destination_health_on_delete AFTER DELETE ON destination_view
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
