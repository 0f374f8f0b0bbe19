-- An installation written by its runner: read the status of its connection and destinations now (the
-- columns `connection_status` and `destination_disabled` of sql/006_health.sql, which its `health` joins).
-- An installation joins its connection within its own project only, so that a token limited to project A
-- cannot read project B's connection error through an installation of A naming B's connection. A
-- connection of another project, or a project missing on either side, joins nothing: the installation's
-- connection is unknown (sql/018_access_hardening.sql recomputed the rows written before that rule).
CREATE OR REPLACE FUNCTION installation_joined_health() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    NEW.connection_status := (
        SELECT c.status FROM connection_view c
        WHERE c.connection_id = NEW.connection_id AND c.project_id = NEW.project_id
    );
    NEW.destination_disabled := EXISTS (
        SELECT 1 FROM destination_view d
        WHERE d.project_id = NEW.project_id AND d.disabled AND NEW.destinations ? d.destination_name
    );
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER installation_joined_health_on_insert BEFORE INSERT ON installation_view
    FOR EACH ROW EXECUTE FUNCTION installation_joined_health();
CREATE OR REPLACE TRIGGER installation_joined_health_on_update BEFORE UPDATE ON installation_view
    FOR EACH ROW WHEN (
        OLD.connection_id IS DISTINCT FROM NEW.connection_id
        OR OLD.project_id IS DISTINCT FROM NEW.project_id
        OR OLD.destinations IS DISTINCT FROM NEW.destinations
    ) EXECUTE FUNCTION installation_joined_health();
