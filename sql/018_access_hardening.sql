-- An installation joins its connection within its own project only, so that a token limited to project A
-- cannot read project B's connection error through an installation of A naming B's connection. A
-- connection of another project, or a project missing on either side, joins nothing: the installation's
-- connection is unknown.
CREATE OR REPLACE FUNCTION installation_joined_health() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
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

-- The installations naming a written connection's id, in any project: a connection that moved to
-- another project leaves the installations of its old one without a status.
CREATE OR REPLACE FUNCTION connection_health_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
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

-- The rows written before: the status each would have joined under the rule above.
WITH joined AS (
    SELECT i.installation_id, c.status
    FROM installation_view i
    LEFT JOIN connection_view c ON c.connection_id = i.connection_id AND c.project_id = i.project_id
)
UPDATE installation_view i SET connection_status = joined.status
FROM joined
WHERE i.installation_id = joined.installation_id AND i.connection_status IS DISTINCT FROM joined.status;

-- The quarantine keeps no request header whose name may carry a credential (X-Api-Key,
-- X-Forwarded-Authorization...: `_kept_headers` in tracker/store/quarantine.py, the same rule); rows
-- already kept lose theirs here. Names are stored lower-cased.
UPDATE quarantine q SET headers = (
    SELECT coalesce(jsonb_object_agg(h.key, h.value), '{}') FROM jsonb_each(q.headers) h
    WHERE h.key IN ('svix-signature', 'webhook-signature', 'kinesis-partition-key')
       OR h.key !~ '(authorization|cookie|token|key|secret|signature|auth|session|password|credential)'
)
WHERE EXISTS (
    SELECT 1 FROM jsonb_object_keys(q.headers) k
    WHERE k NOT IN ('svix-signature', 'webhook-signature', 'kinesis-partition-key')
      AND k ~ '(authorization|cookie|token|key|secret|signature|auth|session|password|credential)'
);
