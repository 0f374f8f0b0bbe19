-- Connections written by their runner (`changed`: the statement's rows): pass the status on to the
-- installations naming a written connection's id, in any project: an installation of the connection's own
-- project gets its status, one of another project none, so a connection that moved to another project
-- leaves the installations of its old one without a status. One UPDATE reaches them all, without refolding.
CREATE OR REPLACE FUNCTION connection_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    WITH now AS (
        SELECT touched.connection_id, c.project_id, c.status
        FROM (SELECT DISTINCT connection_id FROM changed) touched
        LEFT JOIN connection_view c USING (connection_id)
    )
    UPDATE installation_view i
    SET connection_status = CASE WHEN i.project_id = now.project_id THEN now.status END
    FROM now
    WHERE i.connection_id = now.connection_id
      AND i.connection_status IS DISTINCT FROM (CASE WHEN i.project_id = now.project_id THEN now.status END);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER connection_health_on_insert AFTER INSERT ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE OR REPLACE TRIGGER connection_health_on_update AFTER UPDATE ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE OR REPLACE TRIGGER connection_health_on_delete AFTER DELETE ON connection_view
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
