-- Installation documents are stored uncompressed (out of line, as the shadow's are since a rebuild's
-- replay). An installation's 5 KB document is rewritten at nearly every event of the installation, and
-- PostgreSQL's pglz compression of it was most of the time of writing a batch of them: a batch of 500
-- rows went from about 130 ms to 70 ms of PostgreSQL on the bench's log (the write's own statement, its
-- triggers included). The price is disk: about 5 KB a document instead of 2 KB. Connection and
-- destination documents stay under the size that PostgreSQL compresses at, so they are left as they are.
-- Documents written before this migration stay compressed until their installation's next event.
ALTER TABLE installation_view ALTER COLUMN doc SET STORAGE EXTERNAL;
