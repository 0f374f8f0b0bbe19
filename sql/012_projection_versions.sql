-- Versioned read models and blue/green rebuilds.
-- `version`: the logic version of the rows in the table; a tracker whose read model declares a newer one
-- rebuilds it beside the live table and switches over. `generation` counts switches, so a runner that
-- keeps decoded views between batches knows when the rows under them were replaced.
ALTER TABLE projection_checkpoints
    ADD COLUMN version    integer NOT NULL DEFAULT 1,
    ADD COLUMN generation integer NOT NULL DEFAULT 0;

-- The latest rebuild of each read model, in whichever process runs it: progress for `/v1/status`.
CREATE TABLE projection_rebuilds (
    name           text PRIMARY KEY,
    version        integer     NOT NULL,
    phase          text        NOT NULL,  -- replaying | catching up | switching | done | failed
    started_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    events_done    bigint      NOT NULL DEFAULT 0,
    events_total   bigint      NOT NULL DEFAULT 0,  -- the log's events of its types when it began
    matched_live   boolean,                         -- same version: did the rebuilt rows equal the live ones?
    rows_changed   bigint,
    error          text
);
