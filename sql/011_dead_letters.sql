-- Poison events: an event a read model's evolve() failed on. The entity's later events wait behind it
-- (per-stream order holds) while other entities go on; the runner retries with back-off, then parks it
-- for an operator, who may retry it (after a fix) or skip it.
CREATE TABLE dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    projection      text        NOT NULL,  -- the read model's name
    entity_id       text        NOT NULL,  -- the view's key: its later events wait
    position        bigint      NOT NULL,  -- the event that failed
    event_type      text        NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    status          text        NOT NULL DEFAULT 'retrying',  -- retrying | parked | skipping | resolved | skipped
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz,           -- retrying: when the runner tries again
    resolved_at     timestamptz
);
-- At most one open dead letter per entity: it is where the entity's stream stops.
CREATE UNIQUE INDEX dead_letters_open_idx ON dead_letters (projection, entity_id)
    WHERE status IN ('retrying', 'parked', 'skipping');
CREATE INDEX dead_letters_newest_idx ON dead_letters (id DESC);
