-- The destination fan-out of sql/006 rewrote every installation naming a destination at each write of
-- that destination, changed or not: in the latency bench, a third of PostgreSQL's time (300 rows per
-- write, each a 5 KB document, its indexes and its triggers). An installation's flag is whether a
-- *disabled* destination it names exists, so only disabled rows can change it: a destination written
-- as disabled (its new name and project) or one that was (its old ones). Of those installations, only
-- the ones whose flag differs are written.
CREATE OR REPLACE FUNCTION destination_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    WITH touched AS (
        SELECT DISTINCT project_id, destination_name FROM changed
        WHERE destination_name IS NOT NULL AND disabled
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
    RETURN NULL;
END $$;
