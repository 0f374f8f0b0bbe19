-- Health. Each read model keeps the reasons its own events give; an installation's status joins its
-- own with those of its connection and of the destinations its config names (by name, in its project).
-- The joined status is a column kept by triggers, so filtering and counting by health is an index scan,
-- and a connection's error reaches all its installations in one UPDATE, without refolding them.
--
-- Every trigger below first takes the advisory lock 128034608999171 (`HEALTH_LOCK` = 0x7472_6163_6B03 in
-- projections/runner.py, which takes it too, before a batch or a rebuild): the three read models write
-- one at a time, so an installation never reads a connection's status that a concurrent commit changes.

ALTER TABLE installation_view
    ADD COLUMN integration_name     text,
    ADD COLUMN own_status           text    NOT NULL DEFAULT 'healthy',
    ADD COLUMN destinations         jsonb   NOT NULL DEFAULT '[]',
    ADD COLUMN backfill_pending     boolean NOT NULL DEFAULT false,
    ADD COLUMN connection_status    text,
    ADD COLUMN destination_disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN health text NOT NULL GENERATED ALWAYS AS (
        CASE
            WHEN deleted THEN 'deleted'
            WHEN own_status = 'unhealthy' OR connection_status IN ('error', 'deleted') OR destination_disabled
                THEN 'unhealthy'
            WHEN own_status = 'degraded' THEN 'degraded'
            ELSE 'healthy'
        END
    ) STORED;
CREATE INDEX installation_view_health_idx ON installation_view (health, installation_id);
CREATE INDEX installation_view_integration_idx ON installation_view (integration_id, health);
CREATE INDEX installation_view_destinations_idx ON installation_view USING gin (destinations);
CREATE INDEX installation_view_backfill_idx ON installation_view (installation_id) WHERE backfill_pending;

ALTER TABLE destination_view ADD COLUMN destination_name text;
CREATE INDEX destination_view_name_idx ON destination_view (project_id, destination_name);

-- An installation written by its runner: read the status of its connection and destinations now.
CREATE FUNCTION installation_joined_health() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    NEW.connection_status := (SELECT c.status FROM connection_view c WHERE c.connection_id = NEW.connection_id);
    NEW.destination_disabled := EXISTS (
        SELECT 1 FROM destination_view d
        WHERE d.project_id = NEW.project_id AND d.disabled AND NEW.destinations ? d.destination_name
    );
    RETURN NEW;
END $$;
CREATE TRIGGER installation_joined_health_on_insert BEFORE INSERT ON installation_view
    FOR EACH ROW EXECUTE FUNCTION installation_joined_health();
CREATE TRIGGER installation_joined_health_on_update BEFORE UPDATE ON installation_view
    FOR EACH ROW WHEN (
        OLD.connection_id IS DISTINCT FROM NEW.connection_id
        OR OLD.project_id IS DISTINCT FROM NEW.project_id
        OR OLD.destinations IS DISTINCT FROM NEW.destinations
    ) EXECUTE FUNCTION installation_joined_health();

-- Connections written by their runner (`changed`: the statement's rows): pass the status on.
CREATE FUNCTION connection_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    WITH now AS (
        SELECT touched.connection_id, c.status
        FROM (SELECT DISTINCT connection_id FROM changed) touched
        LEFT JOIN connection_view c USING (connection_id)
    )
    UPDATE installation_view i SET connection_status = now.status
    FROM now
    WHERE i.connection_id = now.connection_id AND i.connection_status IS DISTINCT FROM now.status;
    RETURN NULL;
END $$;
CREATE TRIGGER connection_health_on_insert AFTER INSERT ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE TRIGGER connection_health_on_update AFTER UPDATE ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE TRIGGER connection_health_on_delete AFTER DELETE ON connection_view
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();

-- Destinations written by their runner: recompute the installations that name them (old names too).
CREATE FUNCTION destination_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    UPDATE installation_view i SET destination_disabled = EXISTS (
        SELECT 1 FROM destination_view d
        WHERE d.project_id = i.project_id AND d.disabled AND i.destinations ? d.destination_name
    )
    FROM (SELECT DISTINCT project_id, destination_name FROM changed WHERE destination_name IS NOT NULL) touched
    WHERE i.project_id = touched.project_id AND i.destinations ? touched.destination_name;
    RETURN NULL;
END $$;
CREATE TRIGGER destination_health_on_insert AFTER INSERT ON destination_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE TRIGGER destination_health_on_update_new AFTER UPDATE ON destination_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE TRIGGER destination_health_on_update_old AFTER UPDATE ON destination_view
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE TRIGGER destination_health_on_delete AFTER DELETE ON destination_view
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();

-- The history of health: one row per (entity, code), written by the read model of that entity.
CREATE TABLE issues (
    entity         text        NOT NULL,  -- installation | connection | destination
    entity_id      text        NOT NULL,
    code           text        NOT NULL,
    project_id     text,
    integration_id text,
    status         text        NOT NULL,  -- open | resolved
    changed_at     timestamptz NOT NULL,  -- opened, reported again or resolved: newest first sorts by it
    doc            jsonb       NOT NULL,
    PRIMARY KEY (entity, entity_id, code)
);
CREATE INDEX issues_newest_idx ON issues (changed_at DESC, entity DESC, entity_id DESC, code DESC);
CREATE INDEX issues_open_idx ON issues (code) WHERE status = 'open';
