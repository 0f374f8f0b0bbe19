-- Configs known only by URL (`configURL`, `lastConfigURL`), to fetch after the notification is stored.
-- Filled from the log by the worker in tracker/ingest/config_fetch.py, under the checkpoint
-- `config-fetches` in projection_checkpoints, in the transaction that advances it: a queue that loses
-- nothing, since a job lost with this table is found again by scanning the log from 0.
-- What a fetch found is appended to the log as an event (`tracker.config.fetched`, or
-- `tracker.config.unavailable` once it gives up), so a rebuild never needs the URL again.
CREATE TABLE config_fetches (
    installation_id text        NOT NULL,
    field           text        NOT NULL CHECK (field IN ('config', 'lastConfig')),
    url             text        NOT NULL,  -- pre-signed: it carries credentials; never logged whole
    -- The key holds the URL's SHA-256 (of its UTF-8 bytes, written by the worker), not the URL: a pre-signed
    -- URL with a session token may be longer than a btree entry can be.
    url_sha256      bytea       NOT NULL CHECK (length(url_sha256) = 32),
    position        bigint      NOT NULL,  -- of the first event that named the URL
    received_at     timestamptz NOT NULL,  -- of that event: the give-up age counts from it
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'fetched', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),  -- also the lease of a claimed job
    last_error      text,                                -- never holds the query string
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (installation_id, field, url_sha256)
);

CREATE INDEX config_fetches_due_idx ON config_fetches (next_attempt_at) WHERE status = 'pending';
