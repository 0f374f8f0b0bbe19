-- An installation joins its connection within its own project only, so that a token limited to project A
-- cannot read project B's connection error through an installation of A naming B's connection. A
-- connection of another project, or a project missing on either side, joins nothing: the installation's
-- connection is unknown. The rule is in the health trigger functions (sql/repeatable/
-- installation_joined_health.sql, connection_health_fan_out.sql), which this migration replaced.

-- The rows written before: the status each would have joined under the rule above. On a database migrated
-- through 013 before, the change-feed trigger (then of sql/013 or 017) stamps the rows this changes; on one
-- migrated now from before 013 no trigger exists yet (the repeatable files come after), but 013 has just
-- stamped every row, in this same transaction, so the feed shows their new state either way.
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
