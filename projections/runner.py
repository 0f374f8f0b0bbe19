"""The projection runner: the only projection code with I/O.

It reads the log in position order in batches, folds each affected entity in memory with the read
model's `evolve`, and writes the changed views and the checkpoint in one transaction. Appends commit
in position order (see `tracker.store.event_log`), so a checkpoint by position never passes an event
that commits late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any, Generic

import asyncpg
from pydantic import TypeAdapter

from projections.issues import Issue
from projections.read_model import ReadModel, View
from tracker.store.database import Connection, Pool
from tracker.store.event_log import Recorded

log = logging.getLogger(__name__)

_YIELD_EVERY = 200
"""Views folded between two yields to the event loop, so a big batch does not stall the webhook."""
_MAX_BACKOFF = 30.0
_RECENT_VIEWS = 10_000
"""Views a live runner keeps between batches, so a busy entity is not decoded again at every fold."""
_REBUILD_ATTEMPTS = 3
_LOCK_RETRY = 0.02
"""Seconds a runner waits before asking again for a lock another read model holds."""
_HEARTBEAT_EVERY = 1.0
"""Seconds between two heartbeats of a runner that keeps folding."""
HEALTH_LOCK = 0x7472_6163_6B03
"""Read models write one at a time: an installation's health joins its connection's and destinations' rows,
kept in step by the triggers of `sql/006_health.sql`, which take this lock too. Taken first, before any
row lock, so that no two writers wait on each other."""
_ISSUES_UPSERT = (
    "INSERT INTO issues (entity, entity_id, code, project_id, integration_id, status, changed_at, doc)"
    " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[],"
    " $8::jsonb[]) ON CONFLICT (entity, entity_id, code) DO UPDATE SET project_id = EXCLUDED.project_id,"
    " integration_id = EXCLUDED.integration_id, status = EXCLUDED.status, changed_at = EXCLUDED.changed_at,"
    " doc = EXCLUDED.doc"
)


class ProjectionRunner(Generic[View]):
    def __init__(self, pool: Pool, model: ReadModel[View], batch_size: int) -> None:
        self.model = model
        self._pool = pool
        self._batch_size = batch_size
        # One statement, one snapshot: the head it reports is consistent with the batch it returns.
        self._read_sql = (
            "SELECT e.position, e.stream_id, e.version, e.type, e.data, e.received_at, h.head"
            " FROM (SELECT coalesce(max(position), 0) AS head FROM events) h LEFT JOIN LATERAL"
            " (SELECT position, stream_id, version, type, payload->'data' AS data, received_at FROM events"
            f"  WHERE position > $1 AND type = ANY($2::text[]) ORDER BY position LIMIT {batch_size}) e ON true"
        )
        columns = [(model.key_column, "text"), *model.columns, ("position", "bigint"), ("doc", "jsonb")]
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"${i}::{kind}[]" for i, (_, kind) in enumerate(columns, start=1))
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name, _ in columns[1:])
        self._upsert_sql = (
            f"INSERT INTO {model.table} ({names}) SELECT * FROM unnest({arrays})"
            f" ON CONFLICT ({model.key_column}) DO UPDATE SET {updates}"
        )
        key = model.key_column
        self._load_sql = f"SELECT {key} AS key, position, doc::text AS doc FROM {model.table} WHERE {key} = ANY($1)"
        self._types = sorted(model.types)
        self._recent: dict[str, View] = {}
        self._issue_adapter: TypeAdapter[Issue] = TypeAdapter(Issue)
        # A rebuild reads the read model's streams in stream order, after (stream_id, version).
        self._first_stream, self._last_stream = f"{model.stream_prefix}:", f"{model.stream_prefix};"
        self._replay_sql = (
            "SELECT position, stream_id, version, type, payload->'data' AS data, received_at FROM events"
            " WHERE (stream_id, version) > ($1, $2) AND stream_id < $4 AND type = ANY($3::text[])"
            f" ORDER BY stream_id, version LIMIT {batch_size}"
        )

    async def run_batch(self) -> int:
        """Fold the next batch; return how many events it held (0: caught up).

        Waits its turn for HEALTH_LOCK without holding a connection: a rebuild may hold it for minutes.
        """
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                if await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", HEALTH_LOCK):
                    position = await self._lock_checkpoint(conn)
                    folded, new_position, changed = await self._fold_next(conn, position)
                    await self._write(conn, changed)
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

    async def rebuild(self) -> int:
        """Empty the read model and replay the whole log into it; return how many events it folded.

        One repeatable-read transaction: readers keep seeing the old rows until the new ones commit,
        the live runners of every read model wait on HEALTH_LOCK meanwhile (so the joined health columns
        see no half-done state), and the replay sees one snapshot of the log. It reads the log stream by
        stream, so each view is built whole, written once, and only one page of events and views is in
        memory at a time. (Streams are independent: the order between them does not change a view, which
        the projection tests check.)
        """
        for attempt in range(1, _REBUILD_ATTEMPTS + 1):
            try:
                return await self._rebuild()
            except asyncpg.SerializationError:  # a live runner moved the checkpoint as we began
                if attempt == _REBUILD_ATTEMPTS:
                    raise
                log.info("rebuild of %s met a concurrent update; starting again", self.model.name)
        raise AssertionError("unreachable")

    async def _rebuild(self) -> int:
        async with self._pool.acquire() as conn:
            # A session lock, taken before the snapshot: no other read model commits between the two.
            await conn.execute("SELECT pg_advisory_lock($1)", HEALTH_LOCK)
            try:
                return await self._rebuild_on(conn)
            finally:
                await self._unlock(conn)

    async def _unlock(self, conn: Connection) -> None:
        """Release the rebuild's session lock; if the connection cannot (a cancel cut its rollback short),
        end its session, which releases the lock, rather than let the pool hand the lock on."""
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", HEALTH_LOCK)
        except BaseException:
            conn.terminate()
            raise

    async def _rebuild_on(self, conn: Connection) -> int:
        async with conn.transaction(isolation="repeatable_read"):
            await self._lock_checkpoint(conn)
            head: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
            await conn.execute(f"DELETE FROM {self.model.table}")
            await conn.execute("DELETE FROM issues WHERE entity = $1", self.model.entity)
            views: dict[str, View] = {}
            after, total = (self._first_stream, 0), 0
            while rows := await conn.fetch(self._replay_sql, *after, self._types, self._last_stream):
                events = [Recorded(*row) for row in rows]
                total += len(events)
                await self._fold(conn, events, views, load=False)
                # The last stream of the page may go on in the next one: keep its view, write the rest.
                going_on = self.model.key_of(events[-1])
                await self._write(conn, [view for key, view in views.items() if key != going_on])
                views = {going_on: views[going_on]} if going_on in views else {}
                after = (events[-1].stream_id, events[-1].version)
            await self._write(conn, list(views.values()))
            await self._advance_checkpoint(conn, head)  # the head of the snapshot the checkpoint was read in
            return total

    async def run_forever(self, wake: asyncio.Event, poll_interval: float, min_interval: float) -> None:
        """Follow the log: fold what is there, then sleep until woken (a NOTIFY) or the next poll.

        Folds start at least `min_interval` apart: a busy log notifies on every commit, and a fold per
        commit would spend the webhook's CPU on transactions of a few events each.
        """
        loop = asyncio.get_running_loop()
        backoff = poll_interval
        last_beat = -_HEARTBEAT_EVERY
        while True:
            wake.clear()
            started = loop.time()
            try:
                await self.catch_up()
                if started - last_beat >= _HEARTBEAT_EVERY:
                    await self._beat()
                    last_beat = started
                backoff = poll_interval
            except Exception:  # the runner must outlive a failure: log it, back off, try again
                log.exception("projection %s failed; retrying in %.0f s", self.model.name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), poll_interval)
            await asyncio.sleep(max(0.0, started + min_interval - loop.time()))

    async def _beat(self) -> None:
        """Say the runner is alive and caught up (to the head its last batch saw)."""
        await self._pool.execute(
            "INSERT INTO projection_heartbeats (name, beat_at) VALUES ($1, now())"
            " ON CONFLICT (name) DO UPDATE SET beat_at = EXCLUDED.beat_at",
            self.model.name,
        )

    async def _lock_checkpoint(self, conn: Connection) -> int:
        """Read the checkpoint and hold its row: two runners of one read model take turns."""
        position: int = await conn.fetchval(
            "INSERT INTO projection_checkpoints (name) VALUES ($1)"
            " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position",
            self.model.name,
        )
        return position

    async def _advance_checkpoint(self, conn: Connection, position: int) -> None:
        """Never backwards, even if the log was restored to an older head."""
        await conn.execute(
            "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1 AND position < $2",
            self.model.name,
            position,
        )

    async def _fold_next(self, conn: Connection, position: int) -> tuple[int, int, list[View]]:
        """Fold the batch after `position` into the recent views.

        Returns how many events the batch held, the position it ended at and the views it changed.
        """
        rows = await conn.fetch(self._read_sql, position, self._types)
        events = [Recorded(*row[:6]) for row in rows if row["position"] is not None]
        # Fewer events than asked: every event up to the head seen by the same query is folded.
        new_position = events[-1].position if len(events) == self._batch_size else max(rows[0]["head"], position)
        changed = await self._fold(conn, events, self._recent, load=True) if events else []
        return len(events), new_position, changed

    async def _fold(
        self, conn: Connection, events: list[Recorded], views: dict[str, View], *, load: bool
    ) -> list[View]:
        """Fold `events` into `views` (read from the table first if `load`); return the views they changed."""
        by_key: defaultdict[str, list[Recorded]] = defaultdict(list)
        for event in events:
            by_key[self.model.key_of(event)].append(event)
        if load:
            await self._load(conn, list(by_key), views)
        changed = []
        for count, (key, stream) in enumerate(by_key.items(), start=1):
            before = view = views.get(key)
            for event in stream:
                view = self.model.evolve(view, event)
            if view is not None and view is not before:
                views[key] = view
                changed.append(view)
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        return changed

    async def _load(self, conn: Connection, keys: list[str], views: dict[str, View]) -> None:
        """Bring `views` up to date with the table for `keys`.

        A view kept from an earlier batch is reused when the table holds the same position (decoding
        a document is the costly part); another process, or a rolled-back batch, shows as another one.
        """
        rows = await conn.fetch(self._load_sql, keys)
        for row in rows:
            kept = views.get(row["key"])
            if kept is None or kept.position != row["position"]:  # type: ignore[attr-defined]
                views[row["key"]] = self.model.from_json(row["doc"])
        for key in set(keys) - {row["key"] for row in rows}:
            views.pop(key, None)

    async def _write(self, conn: Connection, views: list[View]) -> None:
        """Upsert the views and their issues (all of them: an entity's project may have changed)."""
        rows: list[tuple[Any, ...]] = []
        issue_rows: list[tuple[Any, ...]] = []
        for count, view in enumerate(views, start=1):
            row = self.model.row_of(view)
            rows.append((*row, view.position, self.model.to_json(view)))  # type: ignore[attr-defined]
            issues: tuple[Issue, ...] = view.issues  # type: ignore[attr-defined]
            if issues:
                scope = self.model.issue_scope(view)
                issue_rows.extend(
                    (row[0], issue.code, *scope, issue.status, issue.changed_at, self._issue_json(issue))
                    for issue in issues
                )
            if count % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if rows:
            await conn.execute(self._upsert_sql, *(list(column) for column in zip(*rows, strict=True)))
        if issue_rows:
            columns = (list(column) for column in zip(*issue_rows, strict=True))
            await conn.execute(_ISSUES_UPSERT, self.model.entity, *columns)

    def _issue_json(self, issue: Issue) -> bytes:
        return self._issue_adapter.dump_json(issue, by_alias=True, exclude={"position"})
