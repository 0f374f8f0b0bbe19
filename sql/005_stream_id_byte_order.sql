-- Stream ids compare byte by byte, whatever the database's collation: a rebuild reads the streams of
-- one kind as the range 'installation:' .. 'installation;', which only byte order keeps contiguous
-- (a linguistic collation ignores the punctuation and scatters them).
ALTER TABLE events ALTER COLUMN stream_id TYPE text COLLATE "C";
