-- The fan-out triggers of sql/014 called recompute_destination_disabled even when no written row
-- qualified: an aggregate over no rows still returns one row, of NULL arrays. With nothing to touch,
-- the function still planned its join over installation_view: 14 ms a write of a destination with
-- 100,000 installations, about 5 ms in the webhook scenario, at every destination event. `HAVING`
-- leaves no row to PERFORM on when no written row is or was disabled.
CREATE OR REPLACE FUNCTION destination_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    PERFORM recompute_destination_disabled(array_agg(project_id), array_agg(destination_name))
    FROM changed WHERE disabled
    HAVING count(*) > 0;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION destination_health_fan_out_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    PERFORM recompute_destination_disabled(array_agg(m.project_id), array_agg(m.destination_name))
    FROM before o JOIN changed n USING (destination_id)
    CROSS JOIN LATERAL (VALUES (o.project_id, o.destination_name, o.disabled),
                               (n.project_id, n.destination_name, n.disabled)) AS m(project_id, destination_name, disabled)
    WHERE m.disabled
      AND (o.disabled, o.project_id, o.destination_name) IS DISTINCT FROM (n.disabled, n.project_id, n.destination_name)
    HAVING count(*) > 0;
    RETURN NULL;
END $$;
