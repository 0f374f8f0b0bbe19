"""Kinesis shard leases and checkpoints in PostgreSQL (`sql/010_kinesis.sql`).

A lease says which consumer reads a shard and until when; every take bumps a counter, so a steal
names the lease it saw. The shard's checkpoint moves in the transaction that stores a page (its events and
quarantined records, written by the pipeline on the connection `checkpointing` yields), and only while its
consumer still owns the shard: a consumer that lost the lease (to a steal, or after it expired and was taken)
can fetch, but never store.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from tracker.store.database import Connection, Pool
from tracker.store.errors import UnavailableGuard


class LeaseLostError(Exception):
    """Another consumer owns the shard now: this consumer's batch was not stored."""


@dataclass(frozen=True, slots=True)
class ListedShard:
    """A shard as ListShards reports it."""

    shard_id: str
    parent_ids: tuple[str, ...]
    """ParentShardId and AdjacentParentShardId, when the shard came from a split or a merge."""
    ending_sequence: str | None
    """Set once the shard is closed; None while it is open."""


@dataclass(frozen=True, slots=True)
class ShardLease:
    """A shard's row: its lease, as the database's clock sees it, and its checkpoint."""

    stream: str
    shard_id: str
    parent_ids: tuple[str, ...]
    owner: str | None
    live: bool
    """Owned and not expired."""
    counter: int
    """Bumped by every take."""
    checkpoint: str | None
    """The last sequence number stored; None: nothing read yet."""
    ending_sequence: str | None
    finished: bool
    """Read to its end: its children may be read."""
    millis_behind: int | None
    lease_seconds_left: float | None
    checkpointed_at: datetime | None


_COLUMNS = (
    "stream, shard_id, parent_ids, owner, coalesce(lease_expires > now(), false) AS live, lease_counter,"
    " checkpoint::text AS checkpoint, ending_sequence::text AS ending_sequence, finished, millis_behind,"
    " extract(epoch FROM lease_expires - now())::float8 AS lease_seconds_left, checkpointed_at"
)


def _lease(row: asyncpg.Record) -> ShardLease:
    return ShardLease(
        row["stream"],
        row["shard_id"],
        tuple(row["parent_ids"]),
        row["owner"],
        row["live"],
        row["lease_counter"],
        row["checkpoint"],
        row["ending_sequence"],
        row["finished"],
        row["millis_behind"],
        row["lease_seconds_left"] if row["owner"] is not None else None,
        row["checkpointed_at"],
    )


class ShardLeases:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record_shards(self, stream: str, listed: Sequence[ListedShard]) -> None:
        """Add shards not seen before, and the ending sequence of those closed since."""
        with UnavailableGuard("shard leases"):
            await self._pool.execute(
                "INSERT INTO kinesis_shards (stream, shard_id, parent_ids, ending_sequence)"
                " SELECT $1, s.shard_id, array_remove(ARRAY[s.parent, s.adjacent], NULL), s.ending::numeric"
                " FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) s(shard_id, parent, adjacent, ending)"
                " ON CONFLICT (stream, shard_id) DO UPDATE SET ending_sequence = EXCLUDED.ending_sequence"
                " WHERE kinesis_shards.ending_sequence IS DISTINCT FROM EXCLUDED.ending_sequence",
                stream,
                [shard.shard_id for shard in listed],
                [shard.parent_ids[0] if shard.parent_ids else None for shard in listed],
                [shard.parent_ids[1] if len(shard.parent_ids) > 1 else None for shard in listed],
                [shard.ending_sequence for shard in listed],
            )

    async def leases(self, stream: str) -> list[ShardLease]:
        with UnavailableGuard("shard leases"):
            rows = await self._pool.fetch(
                f"SELECT {_COLUMNS} FROM kinesis_shards WHERE stream = $1 ORDER BY shard_id", stream
            )
        return [_lease(row) for row in rows]

    async def all(self) -> list[ShardLease]:
        """Every shard of every stream any tracker consumes, for the status."""
        rows = await self._pool.fetch(f"SELECT {_COLUMNS} FROM kinesis_shards ORDER BY stream, shard_id")
        return [_lease(row) for row in rows]

    async def renew(self, stream: str, owner: str, seconds: float, lags: Mapping[str, int]) -> set[str]:
        """Extend the owner's leases and keep their lag; return the shards it still owns."""
        with UnavailableGuard("shard leases"):
            rows = await self._pool.fetch(
                "WITH lags AS (SELECT * FROM unnest($4::text[], $5::bigint[]) l(shard_id, millis))"
                " UPDATE kinesis_shards k SET lease_expires = now() + $3 * interval '1 second',"
                " millis_behind = coalesce((SELECT millis FROM lags WHERE lags.shard_id = k.shard_id), millis_behind)"
                " WHERE stream = $1 AND owner = $2 RETURNING shard_id",
                stream,
                owner,
                seconds,
                list(lags),
                list(lags.values()),
            )
        return {row["shard_id"] for row in rows}

    async def take(
        self, stream: str, shard_id: str, owner: str, seconds: float, steal_from: ShardLease | None = None
    ) -> ShardLease | None:
        """Lease a free or expired shard, or (`steal_from`) the one another consumer held as seen then.

        None when another consumer got there first, or the victim's lease changed meanwhile.
        """
        condition = "(owner IS NULL OR lease_expires <= now())"
        args: list[object] = [stream, shard_id, owner, seconds]
        if steal_from is not None:
            condition = "(owner = $5 AND lease_counter = $6)"
            args += [steal_from.owner, steal_from.counter]
        with UnavailableGuard("shard leases"):
            row = await self._pool.fetchrow(
                "UPDATE kinesis_shards SET owner = $3, lease_expires = now() + $4 * interval '1 second',"
                " lease_counter = lease_counter + 1"
                f" WHERE stream = $1 AND shard_id = $2 AND NOT finished AND {condition}"
                f" RETURNING {_COLUMNS}",
                *args,
            )
        return None if row is None else _lease(row)

    @contextlib.asynccontextmanager
    async def checkpointing(
        self, stream: str, shard_id: str, owner: str, *, sequence: str, millis_behind: int | None
    ) -> AsyncIterator[Connection]:
        """Open a transaction that moves the shard's checkpoint to `sequence` and yield its connection: what the
        caller writes on it (a page's events and quarantined records) commits with the checkpoint, or nothing does.

        LeaseLostError if the owner no longer holds the shard: then nothing is written.
        """
        with UnavailableGuard("shard leases"):
            async with self._pool.acquire() as conn, conn.transaction():
                # First: the row lock holds off a steal until this commits, and a stolen lease stores nothing.
                held = await conn.fetchval(
                    "UPDATE kinesis_shards SET checkpoint = greatest(checkpoint, $4::text::numeric),"
                    " checkpointed_at = now(), millis_behind = coalesce($5::bigint, millis_behind)"
                    " WHERE stream = $1 AND shard_id = $2 AND owner = $3 RETURNING true",
                    stream,
                    shard_id,
                    owner,
                    sequence,
                    millis_behind,
                )
                if not held:
                    msg = f"shard {shard_id} of {stream} is no longer leased by {owner}"
                    raise LeaseLostError(msg)
                yield conn

    async def finish(self, stream: str, shard_id: str, owner: str) -> bool:
        """Mark a shard read to its end and free it, so its children may be taken; False if not owned."""
        with UnavailableGuard("shard leases"):
            done = await self._pool.fetchval(
                "UPDATE kinesis_shards SET finished = true, owner = NULL, lease_expires = NULL"
                " WHERE stream = $1 AND shard_id = $2 AND owner = $3 RETURNING true",
                stream,
                shard_id,
                owner,
            )
        return bool(done)

    async def release(self, stream: str, owner: str, shard_ids: Sequence[str] | None = None) -> None:
        """Give up the owner's leases (all, or those named) at once, so another consumer needs not wait."""
        with UnavailableGuard("shard leases"):
            await self._pool.execute(
                "UPDATE kinesis_shards SET owner = NULL, lease_expires = NULL"
                " WHERE stream = $1 AND owner = $2 AND ($3::text[] IS NULL OR shard_id = ANY($3::text[]))",
                stream,
                owner,
                None if shard_ids is None else list(shard_ids),
            )
