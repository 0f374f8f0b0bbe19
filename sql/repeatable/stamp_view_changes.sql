-- The change feed's stamps (the table `view_changes`, sql/013_changes.sql): each written row of a view
-- table gets the next `seq`. Arguments: the entity and the table's key column. A new row is a change; an
-- updated one is when any column differs (a connection's status reaching its installations, a rebuild's new
-- documents), not when a statement rewrote it as it was. The columns are compared in their order with the
-- document last: compared first, each installation a connection's status reached had its document fetched
-- back from TOAST twice and compared, equal, before its `connection_status` told the change (10,000
-- installations: the trigger 337 -> 80 ms, the fan-out's UPDATE 585 -> 300 ms).
--
-- Why `seq` is in commit order: the trigger takes HEALTH_LOCK (tracker_health_lock.sql), which a
-- transaction holds until it has committed, so a transaction that stamps later commits later and a reader
-- that sees a `seq` sees every smaller one.
CREATE OR REPLACE FUNCTION stamp_view_changes() RETURNS trigger LANGUAGE plpgsql AS $$
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
END $$;

CREATE OR REPLACE TRIGGER installation_changes_on_insert AFTER INSERT ON installation_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE OR REPLACE TRIGGER installation_changes_on_update AFTER UPDATE ON installation_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('installation', 'installation_id');
CREATE OR REPLACE TRIGGER connection_changes_on_insert AFTER INSERT ON connection_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE OR REPLACE TRIGGER connection_changes_on_update AFTER UPDATE ON connection_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('connection', 'connection_id');
CREATE OR REPLACE TRIGGER destination_changes_on_insert AFTER INSERT ON destination_view
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');
CREATE OR REPLACE TRIGGER destination_changes_on_update AFTER UPDATE ON destination_view
    REFERENCING OLD TABLE AS before NEW TABLE AS changed FOR EACH STATEMENT
    EXECUTE FUNCTION stamp_view_changes('destination', 'destination_id');
