-- Reviewing the quarantine: a kept delivery is replayed into the log once the tracker understands it, or
-- discarded with a note saying why. Nothing is ever deleted: a discarded row stays, marked, with its raw
-- body, its reason and the note, so "nothing is lost" still holds after review.
ALTER TABLE quarantine
    ADD COLUMN status             text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'replayed', 'discarded')),
    ADD COLUMN resolved_at        timestamptz,  -- when it was replayed or discarded
    ADD COLUMN note               text,         -- why it was discarded
    ADD COLUMN replayed_position  bigint,       -- the log position of the event its replay appended (or found)
    ADD COLUMN last_replay_error  text,         -- why the last replay was refused; the row stays pending
    ADD COLUMN signature_verified boolean,      -- as for the event's metadata; NULL: kept before this column
    ADD COLUMN full_delivery_id   text,         -- the id as given when over 256 characters (delivery_id: its hash)
    ADD CONSTRAINT quarantine_resolved_check CHECK ((status = 'pending') = (resolved_at IS NULL)),
    ADD CONSTRAINT quarantine_replayed_check CHECK (status <> 'replayed' OR replayed_position IS NOT NULL),
    ADD CONSTRAINT quarantine_note_check CHECK (status <> 'discarded' OR btrim(coalesce(note, '')) <> '');

-- Listing newest first within a status (pending, the review queue, above all); a backward scan serves it.
CREATE INDEX quarantine_status_idx ON quarantine (status, id);
