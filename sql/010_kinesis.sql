-- Kinesis: one row per shard of each consumed stream, holding its lease (which tracker process reads it,
-- and until when) and its checkpoint (the last sequence number whose record is in the log or the
-- quarantine). The checkpoint is written in the same transaction as its batch's events
-- (tracker/store/shard_leases.py), so a batch is stored exactly once however often it is read.
CREATE TABLE kinesis_shards (
    stream          text        NOT NULL,
    shard_id        text        NOT NULL,
    parent_ids      text[]      NOT NULL DEFAULT '{}',  -- ParentShardId, AdjacentParentShardId: drained first
    ending_sequence numeric,                            -- set once the shard is closed by a split or a merge
    checkpoint      numeric,                            -- last sequence number stored; NULL: read from the start
    checkpointed_at timestamptz,
    finished        boolean     NOT NULL DEFAULT false, -- read to its end: its children may be read
    owner           text,                               -- the consumer holding the lease; NULL: free
    lease_expires   timestamptz,                        -- past it, any consumer may take the shard
    lease_counter   bigint      NOT NULL DEFAULT 0,     -- bumped by every take: a steal names the lease it saw
    millis_behind   bigint,                             -- MillisBehindLatest of the owner's last GetRecords
    PRIMARY KEY (stream, shard_id),
    CONSTRAINT kinesis_shards_lease_check CHECK (owner IS NULL OR lease_expires IS NOT NULL),
    CONSTRAINT kinesis_shards_finished_check CHECK (NOT finished OR owner IS NULL)
);
