-- The change feed (`GET /v1/changes`, `Tracker.changes()`): one row per installation, connection and
-- destination, stamped with the next `seq` each time its state changes, so the feed reads
-- `WHERE seq > $last ORDER BY seq`. An entity that changed twice between two reads is one row, at its
-- latest state: a state feed, not the event log.
--
-- Why a stamp and not the rows' own `position`: a view can be written with a position the read model's
-- checkpoint has already passed (an entity's events wait behind its dead letter, then are folded), and
-- an installation's health changes when its connection's status or a destination it names does,
-- through the triggers of `sql/006_health.sql`, without a position of its own.
--
-- Why `seq` is in commit order: the stamping trigger takes HEALTH_LOCK (as every writer of the view
-- tables does, see `sql/006_health.sql`), which a transaction holds until it has committed, so a
-- transaction that stamps later commits later and a reader that sees a `seq` sees every smaller one.
CREATE TABLE view_changes (
    entity    text   NOT NULL,  -- installation | connection | destination
    entity_id text   NOT NULL,
    seq       bigint NOT NULL,
    position  bigint NOT NULL,  -- the view's `position` when stamped
    PRIMARY KEY (entity, entity_id)
);
CREATE SEQUENCE view_changes_seq OWNED BY view_changes.seq;
CREATE INDEX view_changes_seq_idx ON view_changes (seq);

-- Arguments: the entity and the table's key column. A new row is a change; an updated one is when
-- any column differs (a connection's status reaching its installations, a rebuild's new documents),
-- not when a statement rewrote it as it was (the destination fan-out of sql/006 does).
CREATE FUNCTION stamp_view_changes() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    stamped bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(128034608999171);
    IF TG_OP = 'INSERT' THEN
        EXECUTE format(
            'INSERT INTO view_changes (entity, entity_id, seq, position)'
            ' SELECT %L, n.%I, nextval(''view_changes_seq''), n.position FROM changed n'
            ' ON CONFLICT (entity, entity_id) DO UPDATE SET seq = EXCLUDED.seq, position = EXCLUDED.position',
            TG_ARGV[0], TG_ARGV[1]
        );
    ELSE
        EXECUTE format(
            'INSERT INTO view_changes (entity, entity_id, seq, position)'
            ' SELECT %L, n.%I, nextval(''view_changes_seq''), n.position'
            ' FROM changed n JOIN before o ON o.%I = n.%I WHERE n.position <> o.position OR ROW(n.*) IS DISTINCT FROM ROW(o.*)'
            ' ON CONFLICT (entity, entity_id) DO UPDATE SET seq = EXCLUDED.seq, position = EXCLUDED.position',
            TG_ARGV[0], TG_ARGV[1], TG_ARGV[1], TG_ARGV[1]
        );
    END IF;
    GET DIAGNOSTICS stamped = ROW_COUNT;
    IF stamped > 0 THEN
        PERFORM pg_notify('tracker_view_changes', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER installation_changes_on_insert AFTER INSERT ON installation_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE TRIGGER installation_changes_on_update AFTER UPDATE ON installation_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE TRIGGER connection_changes_on_insert AFTER INSERT ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE TRIGGER connection_changes_on_update AFTER UPDATE ON connection_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE TRIGGER destination_changes_on_insert AFTER INSERT ON destination_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');
CREATE TRIGGER destination_changes_on_update AFTER UPDATE ON destination_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');

-- Rows that exist already: stamped once, so a feed read from 0 starts with every entity's state.
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'installation', installation_id, nextval('view_changes_seq'), position FROM installation_view;
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'connection', connection_id, nextval('view_changes_seq'), position FROM connection_view;
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'destination', destination_id, nextval('view_changes_seq'), position FROM destination_view;
