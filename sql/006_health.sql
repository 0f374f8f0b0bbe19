-- Health. Each read model keeps the reasons its own events give; an installation's status joins its
-- own with those of its connection and of the destinations its config names (by name, in its project).
-- The joined status is a column kept by triggers, so filtering and counting by health is an index scan,
-- and a connection's error reaches all its installations in one UPDATE, without refolding them.
--
-- The triggers and their functions are in sql/repeatable/: installation_joined_health.sql,
-- connection_health_fan_out.sql, destination_health_fan_out*.sql. Each takes HEALTH_LOCK first
-- (tracker_health_lock.sql), as the projection runners do before a batch or a rebuild's switch-over.

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
