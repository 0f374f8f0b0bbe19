"""The projection runner: the only projection code with I/O.

It reads the log in position order in batches, folds each affected entity in memory with the read
model's `evolve`, and writes the changed views and the checkpoint in one transaction. Appends commit
in position order (see `tracker.store.event_log`), so a checkpoint by position never passes an event
that commits late. An event that evolve() fails on becomes a dead letter (`tracker.projecting.dead_letters`):
its entity waits behind it, the others go on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Generic

from projections.read_model import ReadModel, View
from tracker.domain.recorded import Recorded
from tracker.projecting import dead_letters
from tracker.projecting.folding import fold
from tracker.projecting.view_store import ViewStore
from tracker.store.database import Connection, Pool
from tracker.store.locks import HEALTH_LOCK
from tracker.store.mapper import READ_COLUMNS, decode
from tracker.wake import follow

log = logging.getLogger(__name__)

_RECENT_VIEWS = 10_000
"""Views a live runner keeps between batches, so a busy entity is not decoded again at every fold."""
_LOCK_RETRY = 0.02
"""Seconds a runner waits before asking again for a lock another read model holds."""
_HEARTBEAT_EVERY = 1.0
"""Seconds between two heartbeats of a runner that keeps folding."""
_NO_END = 2**63 - 1


def batch_sql(batch_size: int) -> str:
    """The next batch of a read model's events after $1 (its types: $2), up to $3 at most: `READ_COLUMNS`,
    then the head.

    One statement, one snapshot: the head it reports is consistent with the batch it returns.
    """
    return (
        "SELECT e.*, h.head"
        " FROM (SELECT least(coalesce(max(position), 0), $3) AS head FROM events) h LEFT JOIN LATERAL"
        f" (SELECT {READ_COLUMNS} FROM events"
        f"  WHERE position > $1 AND position <= $3 AND type = ANY($2::text[]) ORDER BY position LIMIT {batch_size})"
        " e ON true"
    )


async def read_batch(
    conn: Connection, sql: str, position: int, types: list[str], batch_size: int, *, until: int = _NO_END
) -> tuple[list[Recorded], int]:
    """The events of the batch after `position` (by `batch_sql`), decoded by the mapper, and the position the
    batch ends at."""
    rows = await conn.fetch(sql, position, types, until)
    events = [decode(row) for row in rows if row["position"] is not None]
    # Fewer events than asked: every event up to the head seen by the same query is folded.
    return events, events[-1].position if len(events) == batch_size else max(rows[0]["head"], position)


class ProjectionRunner(Generic[View]):
    def __init__(self, pool: Pool, model: ReadModel[View], batch_size: int, turn: asyncio.Lock | None = None) -> None:
        self.model = model
        self._pool = pool
        self._turn = turn or asyncio.Lock()
        """Shared by the runners of one process: they take turns here first, handed over at once, and ask
        PostgreSQL for HEALTH_LOCK (which polls) only against other processes and rebuilds. Polling each
        other, they waited 40-190 ms for 2-50 ms of work at 1,000 notifications/s."""
        self._batch_size = batch_size
        self._store = ViewStore(model, model.table, "issues")
        self._read_sql = batch_sql(batch_size)
        self._entity_sql = (
            f"SELECT {READ_COLUMNS} FROM events"
            " WHERE stream_id = $1 AND position >= $2 AND position <= $3 AND type = ANY($4::text[]) ORDER BY position"
        )
        self._types = sorted(model.types)
        self._recent: dict[str, View] = {}
        self._generation = 0

    async def run_batch(self) -> int:
        """Fold the next batch; return how many events it held (0: caught up).

        Waits its turn for HEALTH_LOCK without holding a connection: a rebuild's switch-over holds it too.
        """
        async with self._turn:
            while True:
                async with self._pool.acquire() as conn, conn.transaction():
                    if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", HEALTH_LOCK):
                        position = await self._lock_checkpoint(conn)
                        blocked = await dead_letters.blocked(conn, self.model.name)
                        await self._settle_due(conn, position, blocked)
                        folded, new_position = await self._fold_next(conn, position, blocked)
                        while len(self._recent) > _RECENT_VIEWS:  # forget the oldest
                            del self._recent[next(iter(self._recent))]
                        await self._advance_checkpoint(conn, new_position)
                        return folded
                await asyncio.sleep(_LOCK_RETRY)

    async def catch_up(self) -> int:
        """Fold until the head; return how many events were folded."""
        total = 0
        while True:
            folded = await self.run_batch()
            total += folded
            if folded < self._batch_size:  # a short batch reached the head its snapshot saw
                return total

    async def run_forever(self, wake: asyncio.Event, poll_interval: float, min_interval: float) -> None:
        """Follow the log: fold what is there, then sleep until woken (a NOTIFY) or the next poll; folds
        start at least `min_interval` apart (see `follow`), and beat at most every second."""
        loop = asyncio.get_running_loop()
        last_beat = -_HEARTBEAT_EVERY

        async def fold_and_beat() -> None:
            nonlocal last_beat
            started = loop.time()
            await self.catch_up()
            if started - last_beat >= _HEARTBEAT_EVERY:
                await self._beat()
                last_beat = started

        await follow(
            fold_and_beat, wake, poll_interval=poll_interval, min_interval=min_interval,
            log=log, what=f"projection {self.model.name}",
        )  # fmt: skip

    async def _beat(self) -> None:
        """Say the runner is alive and caught up (to the head its last batch saw)."""
        await self._pool.execute(
            "INSERT INTO projection_heartbeats (name, beat_at) VALUES ($1, now())"
            " ON CONFLICT (name) DO UPDATE SET beat_at = EXCLUDED.beat_at",
            self.model.name,
        )

    async def _lock_checkpoint(self, conn: Connection) -> int:
        """Read the checkpoint and hold its row: two runners of one read model take turns.

        A rebuild that switched over since the last batch replaced the rows under the recent views.
        """
        row = await conn.fetchrow(
            "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2)"
            " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position, generation",
            self.model.name,
            self.model.version,
        )
        assert row is not None
        if row["generation"] != self._generation:
            self._recent.clear()
            self._generation = row["generation"]
        return int(row["position"])

    async def _advance_checkpoint(self, conn: Connection, position: int) -> None:
        """Never backwards, even if the log was restored to an older head."""
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1 AND position < $2",
            self.model.name,
            position,
        )

    async def _fold_next(self, conn: Connection, position: int, blocked: set[str]) -> tuple[int, int]:
        """Fold and write the batch after `position`; return how many events it held and where it ended."""
        events, new_position = await read_batch(conn, self._read_sql, position, self._types, self._batch_size)
        if events:
            keys = list({self.model.key_of(event) for event in events} - blocked)
            await self._store.load(conn, keys, self._recent)
            folded = await fold(self.model, events, self._recent, blocked)
            await self._store.write(conn, folded.changed)
            await self._store.tell(conn, folded.told)
            await dead_letters.park(conn, self.model.name, folded.failures)
        return len(events), new_position

    async def _settle_due(self, conn: Connection, position: int, blocked: set[str]) -> None:
        """Fold the waiting events of each entity whose dead letter is due (a retry, or a skip an operator
        asked for), up to the checkpoint; the batch after the checkpoint then folds the entity as usual."""
        for letter in await dead_letters.due(conn, self.model.name):
            key = letter.entity_id
            rows = await conn.fetch(
                self._entity_sql, f"{self.model.stream_prefix}:{key}", letter.position, position, self._types
            )
            events = [decode(row) for row in rows if not (letter.skipping and row["position"] == letter.position)]
            views: dict[str, View] = {}
            await self._store.load(conn, [key], views)
            self._recent.pop(key, None)
            folded = await fold(self.model, events, views, set())
            await self._store.write(conn, folded.changed)
            await self._store.tell(conn, folded.told)
            failed = folded.failures[0] if folded.failures else None
            if failed is not None and failed.event.position == letter.position and not letter.skipping:
                await dead_letters.failed_again(conn, letter, failed.error)
                continue
            await dead_letters.settle(conn, letter)
            await dead_letters.park(conn, self.model.name, folded.failures)  # a later event failed instead
            if failed is None:
                blocked.discard(key)
