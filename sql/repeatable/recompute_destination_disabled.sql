-- The `destination_disabled` flag of the installations naming any of the given (project, destination name)
-- pairs: whether a *disabled* destination they name exists in their project. Only the installations whose
-- flag differs are written: rewriting every installation naming a destination at each write of it was a
-- third of PostgreSQL's time in the latency bench (300 rows per write, each a 5 KB document, its indexes and
-- its triggers). Called by the destination fan-out triggers (destination_health_fan_out*.sql).
CREATE OR REPLACE FUNCTION recompute_destination_disabled(p_project_id text[], p_destination_name text[])
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
