-- One round trip per group commit: lock, deduplicate, number the streams, insert and notify in one
-- statement. The caller passes one array per column, in arrival order; it gets one row per input row.
-- Called by `EventLog.append_on` (tracker/store/event_log.py), which names the channel `tracker_events` too.
CREATE OR REPLACE FUNCTION append_events(
    p_stream_id   text[],
    p_type        text[],
    p_topic       text[],
    p_payload     jsonb[],
    p_raw         bytea[],
    p_metadata    jsonb[],
    p_dedupe_key  text[],
    p_received_at timestamptz[]
) RETURNS TABLE (ord bigint, "position" bigint, stream_id text, version integer, duplicate boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    -- Serialise appends, so positions commit in increasing order (see 001_event_log.sql).
    PERFORM pg_advisory_xact_lock(tracker_append_lock());
    RETURN QUERY
    WITH input AS (
        SELECT * FROM unnest(p_stream_id, p_type, p_topic, p_payload, p_raw, p_metadata, p_dedupe_key, p_received_at)
            WITH ORDINALITY AS i(stream_id, type, topic, payload, raw, metadata, dedupe_key, received_at, ord)
    ),
    known AS (  -- delivered before: a redelivery appends nothing
        SELECT e.dedupe_key, e.position, e.stream_id, e.version FROM events e
        WHERE e.dedupe_key = ANY(p_dedupe_key)
    ),
    fresh AS (  -- the first occurrence of each new key in this batch
        SELECT DISTINCT ON (i.dedupe_key) i.* FROM input i
        WHERE NOT EXISTS (SELECT 1 FROM known k WHERE k.dedupe_key = i.dedupe_key)
        ORDER BY i.dedupe_key, i.ord
    ),
    numbered AS (
        SELECT f.*,
               (coalesce((SELECT max(e.version) FROM events e WHERE e.stream_id = f.stream_id), 0)
                + row_number() OVER (PARTITION BY f.stream_id ORDER BY f.ord))::integer AS version
        FROM fresh f
    ),
    inserted AS (
        INSERT INTO events (stream_id, version, type, topic, payload, raw, metadata, dedupe_key, received_at)
        SELECT n.stream_id, n.version, n.type, n.topic, n.payload, n.raw, n.metadata, n.dedupe_key, n.received_at
        FROM numbered n ORDER BY n.ord
        RETURNING events.position, events.stream_id, events.version, events.dedupe_key
    ),
    outcome AS (
        SELECT ins.dedupe_key, ins.position, ins.stream_id, ins.version, n.ord AS first_ord
        FROM inserted ins JOIN numbered n USING (dedupe_key)
        UNION ALL
        SELECT k.dedupe_key, k.position, k.stream_id, k.version, NULL FROM known k
    )
    SELECT i.ord, o.position, o.stream_id, o.version, o.first_ord IS DISTINCT FROM i.ord
    FROM input i JOIN outcome o USING (dedupe_key)
    ORDER BY i.ord;
    IF FOUND THEN
        PERFORM pg_notify('tracker_events', '');
    END IF;
END
$$;
