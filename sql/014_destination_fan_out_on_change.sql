-- The destination fan-out of sql/006 rewrote every installation naming a destination at each write of
-- that destination, changed or not: in the latency bench, a third of PostgreSQL's time (300 rows per
-- write, each a 5 KB document, its indexes and its triggers). An installation's flag is whether a
-- *disabled* destination it names exists, so only disabled rows can change it: a destination written
-- as disabled (under its new name and project) or one that was (its old ones), and on an update only
-- when the flag, the name or the project changed. Of those installations, only the ones whose flag
-- differs are written.
--
-- The functions are in sql/repeatable/ (recompute_destination_disabled.sql, destination_health_fan_out.sql,
-- destination_health_fan_out_on_update.sql), with the one update trigger, destination_health_on_update,
-- that replaced the two below. A database migrated before the repeatable files has them; one created
-- since never had them.
DROP TRIGGER IF EXISTS destination_health_on_update_new ON destination_view;
DROP TRIGGER IF EXISTS destination_health_on_update_old ON destination_view;
