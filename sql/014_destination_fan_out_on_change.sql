-- The destination fan-out of sql/006 rewrote every installation naming a destination at each write of
-- that destination, changed or not: in the latency bench, a third of PostgreSQL's time (300 rows per
-- write, each a 5 KB document, its indexes and its triggers). An installation's flag is whether a
-- *disabled* destination it names exists, so only disabled rows can change it: a destination written
-- as disabled (under its new name and project) or one that was (its old ones), and on an update only
-- when the flag, the name or the project changed. Of those installations, only the ones whose flag
-- differs are written.
CREATE FUNCTION recompute_destination_disabled(p_project_id text[], p_destination_name text[])
RETURNS void LANGUAGE sql AS $$
    WITH touched AS (
        SELECT DISTINCT project_id, destination_name
        FROM unnest(p_project_id, p_destination_name) AS t(project_id, destination_name)
        WHERE destination_name IS NOT NULL
    ),
    now AS (
        SELECT DISTINCT i.installation_id, EXISTS (
            SELECT 1 FROM destination_view d
            WHERE d.project_id = i.project_id AND d.disabled AND i.destinations ? d.destination_name
        ) AS disabled
        FROM installation_view i JOIN touched
            ON i.project_id = touched.project_id AND i.destinations ? touched.destination_name
    )
    UPDATE installation_view i SET destination_disabled = now.disabled
    FROM now
    WHERE i.installation_id = now.installation_id AND i.destination_disabled IS DISTINCT FROM now.disabled;
$$;

-- An insert (`changed`: the new rows) or a delete (the old ones).
CREATE OR REPLACE FUNCTION destination_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    PERFORM recompute_destination_disabled(array_agg(project_id), array_agg(destination_name))
    FROM changed WHERE disabled;
    RETURN NULL;
END $$;

-- An update: the rows whose flag, name or project changed, under their old and their new names.
CREATE FUNCTION destination_health_fan_out_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    PERFORM recompute_destination_disabled(array_agg(m.project_id), array_agg(m.destination_name))
    FROM before o JOIN changed n USING (destination_id)
    CROSS JOIN LATERAL (VALUES (o.project_id, o.destination_name, o.disabled),
                               (n.project_id, n.destination_name, n.disabled)) AS m(project_id, destination_name, disabled)
    WHERE m.disabled
      AND (o.disabled, o.project_id, o.destination_name) IS DISTINCT FROM (n.disabled, n.project_id, n.destination_name);
    RETURN NULL;
END $$;
DROP TRIGGER destination_health_on_update_new ON destination_view;
DROP TRIGGER destination_health_on_update_old ON destination_view;
CREATE TRIGGER destination_health_on_update AFTER UPDATE ON destination_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION destination_health_fan_out_on_update();
