-- The event log: every accepted notification, once, in the order the log committed it.
-- Appends are serialised by a transaction-scoped advisory lock (see tracker/store/event_log.py), so
-- `position` commits in increasing order and a reader that has seen position P will never later see
-- a smaller one: projections may checkpoint by position alone.
CREATE TABLE events (
    position    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id   text        NOT NULL,  -- installation:<id>, connection:<id>, destination:<id>, unrecognized:<type>
    version     integer     NOT NULL CHECK (version > 0),
    type        text        NOT NULL,  -- Ampersand's notificationType, verbatim
    topic       text        NOT NULL,  -- the eventsourcing topic of the domain event class
    payload     jsonb       NOT NULL,  -- the domain event's state as eventsourcing's mapper wrote it; payload->'data' is the notification data
    raw         bytea       NOT NULL,  -- the bytes as received (webhook body, Kinesis record, NDJSON line)
    metadata    jsonb       NOT NULL,  -- source, deliveryId, receivedAt, signatureVerified and transport details
    dedupe_key  text        NOT NULL,  -- one per delivery: a redelivery appends nothing
    received_at timestamptz NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_dedupe_key_key UNIQUE (dedupe_key)
);

CREATE INDEX events_type_idx ON events (type, position);

-- Where each read model has got to; written in the same transaction as the read model's rows.
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    position   bigint      NOT NULL DEFAULT 0 CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
