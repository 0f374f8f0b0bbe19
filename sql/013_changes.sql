-- The change feed (`GET /v1/changes`, `Tracker.changes()`): one row per installation, connection and
-- destination, stamped with the next `seq` each time its state changes, so the feed reads
-- `WHERE seq > $last ORDER BY seq`. An entity that changed twice between two reads is one row, at its
-- latest state: a state feed, not the event log.
--
-- Why a stamp and not the rows' own `position`: a view can be written with a position the read model's
-- checkpoint has already passed (an entity's events wait behind its dead letter, then are folded), and
-- an installation's health changes when its connection's status or a destination it names does,
-- through the health triggers (sql/006_health.sql), without a position of its own.
--
-- The stamps are written by the triggers of sql/repeatable/stamp_view_changes.sql, which says why `seq`
-- is in commit order.
CREATE TABLE view_changes (
    entity    text   NOT NULL,  -- installation | connection | destination
    entity_id text   NOT NULL,
    seq       bigint NOT NULL,
    position  bigint NOT NULL,  -- the view's `position` when stamped
    PRIMARY KEY (entity, entity_id)
);
CREATE SEQUENCE view_changes_seq OWNED BY view_changes.seq;
CREATE INDEX view_changes_seq_idx ON view_changes (seq);

-- Rows that exist already: stamped once, so a feed read from 0 starts with every entity's state.
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'installation', installation_id, nextval('view_changes_seq'), position FROM installation_view;
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'connection', connection_id, nextval('view_changes_seq'), position FROM connection_view;
INSERT INTO view_changes (entity, entity_id, seq, position)
SELECT 'destination', destination_id, nextval('view_changes_seq'), position FROM destination_view;
