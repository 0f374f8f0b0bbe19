-- Deliveries refused after authentication (not JSON, schema-invalid): kept with the reason, never dropped.
CREATE TABLE quarantine (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL,  -- webhook, import, kinesis, api
    delivery_id text UNIQUE,           -- a redelivery of the same bad message is kept once
    reason      text        NOT NULL,
    problems    jsonb       NOT NULL DEFAULT '[]',
    headers     jsonb       NOT NULL DEFAULT '{}',
    raw         bytea       NOT NULL
);
