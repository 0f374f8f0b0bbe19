-- The schema a fresh `migrate` makes, as PostgreSQL's catalogs describe it (tests/test_schema.py). Not run:
-- read it to see every table, index, constraint, function and trigger in one place. To refresh it after a
-- change to sql/: UPDATE_SCHEMA_SNAPSHOT=1 .venv/bin/pytest tests/test_schema.py

CREATE TABLE alert_deliveries (
    id text NOT NULL,
    subscription_id text NOT NULL,
    "position" bigint NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL,
    code text NOT NULL,
    transition text NOT NULL,
    occurred_at timestamp with time zone NOT NULL,
    body bytea NOT NULL,
    status text NOT NULL DEFAULT 'pending'::text,
    outcome text,
    next_attempt_at timestamp with time zone NOT NULL,
    attempt_count integer NOT NULL DEFAULT 0,
    attempts jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    settled_at timestamp with time zone,
    CONSTRAINT alert_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT alert_deliveries_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'delivered'::text, 'failed'::text, 'suppressed'::text, 'cancelled'::text])))
);
CREATE INDEX alert_deliveries_due_idx ON public.alert_deliveries USING btree (next_attempt_at, "position") WHERE (status = 'pending'::text);
CREATE INDEX alert_deliveries_issue_idx ON public.alert_deliveries USING btree (subscription_id, entity, entity_id, code, "position");
CREATE INDEX alert_deliveries_newest_idx ON public.alert_deliveries USING btree (created_at DESC, id DESC);

CREATE TABLE alert_outbox (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    "position" bigint NOT NULL,
    entity text NOT NULL,
    entity_id text NOT NULL,
    code text NOT NULL,
    transition text NOT NULL,
    project_id text,
    integration_id text,
    occurred_at timestamp with time zone NOT NULL,
    issue jsonb NOT NULL,
    recorded_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT alert_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT alert_outbox_transition_check CHECK ((transition = ANY (ARRAY['opened'::text, 'reopened'::text, 'resolved'::text])))
);

CREATE TABLE alert_subscription_state (
    subscription_id text NOT NULL,
    failing_since timestamp with time zone,
    last_error text,
    last_delivered_at timestamp with time zone,
    CONSTRAINT alert_subscription_state_pkey PRIMARY KEY (subscription_id)
);

CREATE TABLE alert_subscription_view (
    subscription_id text NOT NULL,
    status text NOT NULL,
    "position" bigint NOT NULL,
    doc jsonb NOT NULL,
    CONSTRAINT alert_subscription_view_pkey PRIMARY KEY (subscription_id)
);

CREATE TABLE config_fetches (
    installation_id text NOT NULL,
    field text NOT NULL,
    url text NOT NULL,
    url_sha256 bytea NOT NULL,
    "position" bigint NOT NULL,
    received_at timestamp with time zone NOT NULL,
    status text NOT NULL DEFAULT 'pending'::text,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamp with time zone NOT NULL DEFAULT now(),
    last_error text,
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT config_fetches_field_check CHECK ((field = ANY (ARRAY['config'::text, 'lastConfig'::text]))),
    CONSTRAINT config_fetches_pkey PRIMARY KEY (installation_id, field, url_sha256),
    CONSTRAINT config_fetches_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'fetched'::text, 'failed'::text]))),
    CONSTRAINT config_fetches_url_sha256_check CHECK ((length(url_sha256) = 32))
);
CREATE INDEX config_fetches_due_idx ON public.config_fetches USING btree (next_attempt_at) WHERE (status = 'pending'::text);

CREATE TABLE connection_view (
    connection_id text NOT NULL,
    project_id text,
    provider text,
    group_ref text,
    status text NOT NULL,
    "position" bigint NOT NULL,
    doc jsonb NOT NULL,
    CONSTRAINT connection_view_pkey PRIMARY KEY (connection_id)
);
CREATE INDEX connection_view_project_idx ON public.connection_view USING btree (project_id, connection_id);
CREATE TRIGGER connection_changes_on_insert AFTER INSERT ON public.connection_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE TRIGGER connection_changes_on_update AFTER UPDATE ON public.connection_view REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE TRIGGER connection_health_on_delete AFTER DELETE ON public.connection_view REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE TRIGGER connection_health_on_insert AFTER INSERT ON public.connection_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();
CREATE TRIGGER connection_health_on_update AFTER UPDATE ON public.connection_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION connection_health_fan_out();

CREATE TABLE dead_letters (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    projection text NOT NULL,
    entity_id text NOT NULL,
    "position" bigint NOT NULL,
    event_type text NOT NULL,
    error text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    status text NOT NULL DEFAULT 'retrying'::text,
    first_failed_at timestamp with time zone NOT NULL DEFAULT now(),
    last_failed_at timestamp with time zone NOT NULL DEFAULT now(),
    next_attempt_at timestamp with time zone,
    resolved_at timestamp with time zone,
    CONSTRAINT dead_letters_pkey PRIMARY KEY (id)
);
CREATE INDEX dead_letters_newest_idx ON public.dead_letters USING btree (id DESC);
CREATE UNIQUE INDEX dead_letters_open_idx ON public.dead_letters USING btree (projection, entity_id) WHERE (status = ANY (ARRAY['retrying'::text, 'parked'::text, 'skipping'::text]));

CREATE TABLE destination_view (
    destination_id text NOT NULL,
    project_id text,
    disabled boolean NOT NULL DEFAULT false,
    "position" bigint NOT NULL,
    doc jsonb NOT NULL,
    destination_name text,
    CONSTRAINT destination_view_pkey PRIMARY KEY (destination_id)
);
CREATE INDEX destination_view_name_idx ON public.destination_view USING btree (project_id, destination_name);
CREATE INDEX destination_view_project_idx ON public.destination_view USING btree (project_id, destination_id);
CREATE TRIGGER destination_changes_on_insert AFTER INSERT ON public.destination_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');
CREATE TRIGGER destination_changes_on_update AFTER UPDATE ON public.destination_view REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');
CREATE TRIGGER destination_health_on_delete AFTER DELETE ON public.destination_view REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE TRIGGER destination_health_on_insert AFTER INSERT ON public.destination_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out();
CREATE TRIGGER destination_health_on_update AFTER UPDATE ON public.destination_view REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION destination_health_fan_out_on_update();

CREATE TABLE events (
    "position" bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    stream_id text COLLATE "C" NOT NULL,
    version integer NOT NULL,
    type text NOT NULL,
    topic text NOT NULL,
    payload jsonb NOT NULL,
    raw bytea NOT NULL,
    metadata jsonb NOT NULL,
    dedupe_key text NOT NULL,
    received_at timestamp with time zone NOT NULL,
    CONSTRAINT events_dedupe_key_key UNIQUE (dedupe_key),
    CONSTRAINT events_pkey PRIMARY KEY ("position"),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_version_check CHECK ((version > 0))
);
CREATE INDEX events_type_idx ON public.events USING btree (type, "position");

CREATE TABLE installation_view (
    installation_id text NOT NULL,
    project_id text,
    provider text,
    integration_id text,
    group_ref text,
    connection_id text,
    deleted boolean NOT NULL DEFAULT false,
    "position" bigint NOT NULL,
    doc jsonb STORAGE EXTERNAL NOT NULL,
    integration_name text,
    own_status text NOT NULL DEFAULT 'healthy'::text,
    destinations jsonb NOT NULL DEFAULT '[]'::jsonb,
    backfill_pending boolean NOT NULL DEFAULT false,
    connection_status text,
    destination_disabled boolean NOT NULL DEFAULT false,
    health text NOT NULL GENERATED ALWAYS AS (
CASE
    WHEN deleted THEN 'deleted'::text
    WHEN ((own_status = 'unhealthy'::text) OR (connection_status = ANY (ARRAY['error'::text, 'deleted'::text])) OR destination_disabled) THEN 'unhealthy'::text
    WHEN (own_status = 'degraded'::text) THEN 'degraded'::text
    ELSE 'healthy'::text
END) STORED,
    CONSTRAINT installation_view_pkey PRIMARY KEY (installation_id)
);
CREATE INDEX installation_view_backfill_idx ON public.installation_view USING btree (installation_id) WHERE backfill_pending;
CREATE INDEX installation_view_connection_idx ON public.installation_view USING btree (connection_id);
CREATE INDEX installation_view_destinations_idx ON public.installation_view USING gin (destinations);
CREATE INDEX installation_view_health_idx ON public.installation_view USING btree (health, installation_id);
CREATE INDEX installation_view_integration_idx ON public.installation_view USING btree (integration_id, health);
CREATE INDEX installation_view_project_idx ON public.installation_view USING btree (project_id, installation_id);
CREATE TRIGGER installation_changes_on_insert AFTER INSERT ON public.installation_view REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE TRIGGER installation_changes_on_update AFTER UPDATE ON public.installation_view REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE TRIGGER installation_joined_health_on_insert BEFORE INSERT ON public.installation_view FOR EACH ROW EXECUTE FUNCTION installation_joined_health();
CREATE TRIGGER installation_joined_health_on_update BEFORE UPDATE ON public.installation_view FOR EACH ROW WHEN (((old.connection_id IS DISTINCT FROM new.connection_id) OR (old.project_id IS DISTINCT FROM new.project_id) OR (old.destinations IS DISTINCT FROM new.destinations))) EXECUTE FUNCTION installation_joined_health();

CREATE TABLE issues (
    entity text NOT NULL,
    entity_id text NOT NULL,
    code text NOT NULL,
    project_id text,
    integration_id text,
    status text NOT NULL,
    changed_at timestamp with time zone NOT NULL,
    doc jsonb NOT NULL,
    CONSTRAINT issues_pkey PRIMARY KEY (entity, entity_id, code)
);
CREATE INDEX issues_newest_idx ON public.issues USING btree (changed_at DESC, entity DESC, entity_id DESC, code DESC);
CREATE INDEX issues_open_idx ON public.issues USING btree (code) WHERE (status = 'open'::text);

CREATE TABLE kinesis_shards (
    stream text NOT NULL,
    shard_id text NOT NULL,
    parent_ids text[] NOT NULL DEFAULT '{}'::text[],
    ending_sequence numeric,
    checkpoint numeric,
    checkpointed_at timestamp with time zone,
    finished boolean NOT NULL DEFAULT false,
    owner text,
    lease_expires timestamp with time zone,
    lease_counter bigint NOT NULL DEFAULT 0,
    millis_behind bigint,
    CONSTRAINT kinesis_shards_finished_check CHECK (((NOT finished) OR (owner IS NULL))),
    CONSTRAINT kinesis_shards_lease_check CHECK (((owner IS NULL) OR (lease_expires IS NOT NULL))),
    CONSTRAINT kinesis_shards_pkey PRIMARY KEY (stream, shard_id)
);

CREATE TABLE projection_checkpoints (
    name text NOT NULL,
    "position" bigint NOT NULL DEFAULT 0,
    updated_at timestamp with time zone NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1,
    generation integer NOT NULL DEFAULT 0,
    CONSTRAINT projection_checkpoints_pkey PRIMARY KEY (name),
    CONSTRAINT projection_checkpoints_position_check CHECK (("position" >= 0))
);

CREATE TABLE projection_heartbeats (
    name text NOT NULL,
    beat_at timestamp with time zone NOT NULL,
    CONSTRAINT projection_heartbeats_pkey PRIMARY KEY (name)
);

CREATE TABLE projection_rebuilds (
    name text NOT NULL,
    version integer NOT NULL,
    phase text NOT NULL,
    started_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    finished_at timestamp with time zone,
    events_done bigint NOT NULL DEFAULT 0,
    events_total bigint NOT NULL DEFAULT 0,
    matched_live boolean,
    rows_changed bigint,
    error text,
    CONSTRAINT projection_rebuilds_pkey PRIMARY KEY (name)
);

CREATE TABLE quarantine (
    id bigint NOT NULL GENERATED ALWAYS AS IDENTITY,
    received_at timestamp with time zone NOT NULL DEFAULT now(),
    source text NOT NULL,
    delivery_id text,
    reason text NOT NULL,
    problems jsonb NOT NULL DEFAULT '[]'::jsonb,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    raw bytea NOT NULL,
    status text NOT NULL DEFAULT 'pending'::text,
    resolved_at timestamp with time zone,
    note text,
    replayed_position bigint,
    last_replay_error text,
    signature_verified boolean,
    full_delivery_id text,
    CONSTRAINT quarantine_delivery_id_key UNIQUE (delivery_id),
    CONSTRAINT quarantine_note_check CHECK (((status <> 'discarded'::text) OR (btrim(COALESCE(note, ''::text)) <> ''::text))),
    CONSTRAINT quarantine_pkey PRIMARY KEY (id),
    CONSTRAINT quarantine_replayed_check CHECK (((status <> 'replayed'::text) OR (replayed_position IS NOT NULL))),
    CONSTRAINT quarantine_resolved_check CHECK (((status = 'pending'::text) = (resolved_at IS NULL))),
    CONSTRAINT quarantine_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'replayed'::text, 'discarded'::text])))
);
CREATE INDEX quarantine_status_idx ON public.quarantine USING btree (status, id);

CREATE TABLE schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT schema_migrations_pkey PRIMARY KEY (version)
);

CREATE TABLE schema_repeatables (
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone NOT NULL DEFAULT now(),
    CONSTRAINT schema_repeatables_pkey PRIMARY KEY (name)
);

CREATE TABLE view_changes (
    entity text NOT NULL,
    entity_id text NOT NULL,
    seq bigint NOT NULL,
    "position" bigint NOT NULL,
    CONSTRAINT view_changes_pkey PRIMARY KEY (entity, entity_id)
);
CREATE INDEX view_changes_seq_idx ON public.view_changes USING btree (seq);

CREATE SEQUENCE view_changes_seq AS bigint START 1 INCREMENT 1 OWNED BY view_changes.seq;

CREATE OR REPLACE FUNCTION public.append_events(p_stream_id text[], p_type text[], p_topic text[], p_payload jsonb[], p_raw bytea[], p_metadata jsonb[], p_dedupe_key text[], p_received_at timestamp with time zone[])
 RETURNS TABLE(ord bigint, "position" bigint, stream_id text, version integer, duplicate boolean)
 LANGUAGE plpgsql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.connection_health_fan_out()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
END $function$;

CREATE OR REPLACE FUNCTION public.destination_health_fan_out()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    PERFORM recompute_destination_disabled(array_agg(project_id), array_agg(destination_name))
    FROM changed WHERE disabled
    HAVING count(*) > 0;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION public.destination_health_fan_out_on_update()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    PERFORM recompute_destination_disabled(array_agg(m.project_id), array_agg(m.destination_name))
    FROM before o JOIN changed n USING (destination_id)
    CROSS JOIN LATERAL (VALUES (o.project_id, o.destination_name, o.disabled),
                               (n.project_id, n.destination_name, n.disabled)) AS m(project_id, destination_name, disabled)
    WHERE m.disabled
      AND (o.disabled, o.project_id, o.destination_name) IS DISTINCT FROM (n.disabled, n.project_id, n.destination_name)
    HAVING count(*) > 0;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION public.installation_joined_health()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
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
END $function$;

CREATE OR REPLACE FUNCTION public.recompute_destination_disabled(p_project_id text[], p_destination_name text[])
 RETURNS void
 LANGUAGE sql
AS $function$
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
$function$;

CREATE OR REPLACE FUNCTION public.stamp_view_changes()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
DECLARE
    stamped bigint;
    differs text;
BEGIN
    PERFORM pg_advisory_xact_lock(tracker_health_lock());
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO view_changes (entity, entity_id, seq, position)'
            ' SELECT %L, n.%I, nextval(''view_changes_seq''), n.position FROM changed n'
            ' ON CONFLICT (entity, entity_id) DO UPDATE SET seq = EXCLUDED.seq, position = EXCLUDED.position',
            TG_ARGV[0], TG_ARGV[1]
        );
    ELSE
        SELECT string_agg(format('n.%1$I IS DISTINCT FROM o.%1$I', attname), ' OR ' ORDER BY attname = 'doc', attnum)
        INTO differs
        FROM pg_attribute
        WHERE attrelid = TG_RELID AND attnum > 0 AND NOT attisdropped;
        EXECUTE format(
            'INSERT INTO view_changes (entity, entity_id, seq, position)'
            ' SELECT %L, n.%I, nextval(''view_changes_seq''), n.position'
            ' FROM changed n JOIN before o ON o.%I = n.%I WHERE %s'
            ' ON CONFLICT (entity, entity_id) DO UPDATE SET seq = EXCLUDED.seq, position = EXCLUDED.position',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[1], TG_ARGV[1], differs
        );
    END IF;
    GET DIAGNOSTICS stamped = ROW_COUNT;
    IF stamped > 0 THEN
        PERFORM pg_notify('tracker_view_changes', '');
    END IF;
    RETURN NULL;
END $function$;

CREATE OR REPLACE FUNCTION public.tracker_append_lock()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ SELECT x'747261636B02'::bigint $function$;

CREATE OR REPLACE FUNCTION public.tracker_health_lock()
 RETURNS bigint
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$ SELECT x'747261636B03'::bigint $function$;
