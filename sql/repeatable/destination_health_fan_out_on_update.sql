-- Destinations updated by their runner: recompute the installations naming the rows whose flag, name or
-- project changed and that are or were disabled, under their old and their new names (and projects).
-- As in destination_health_fan_out.sql, `HAVING` skips the call when no such row was written.
CREATE OR REPLACE FUNCTION destination_health_fan_out_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    PERFORM recompute_destination_disabled(array_agg(m.project_id), array_agg(m.destination_name))
    FROM before o JOIN changed n USING (destination_id)
    CROSS JOIN LATERAL (VALUES (o.project_id, o.destination_name, o.disabled),
                               (n.project_id, n.destination_name, n.disabled)) AS m(project_id, destination_name, disabled)
    WHERE m.disabled
      AND (o.disabled, o.project_id, o.destination_name) IS DISTINCT FROM (n.disabled, n.project_id, n.destination_name)
    HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER destination_health_on_update AFTER UPDATE ON destination_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION destination_health_fan_out_on_update();
