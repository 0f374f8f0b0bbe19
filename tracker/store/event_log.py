"""The event log in PostgreSQL: batched, deduplicated appends and reads by position or stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent

from tracker.domain.base import TrackerEvent, UnrecognizedEvent
from tracker.store.database import Connection, Pool
from tracker.store.errors import UnavailableGuard
from tracker.store.locks import APPEND_LOCK

NOTIFY_CHANNEL = "tracker_events"
"""The append function in `sql/repeatable/append_events.sql` notifies it; the name is written there too."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """A notification ready to append; the log assigns its stream version."""

    stream_id: str
    event_class: type[TrackerEvent]
    notification_type: str
    data: dict[str, Any]
    raw: bytes
    metadata: dict[str, Any]
    dedupe_key: str
    received_at: datetime

    def to_domain_event(self, version: int) -> TrackerEvent:
        fields: dict[str, Any] = {
            "originator_id": self.stream_id,
            "originator_version": version,
            "timestamp": self.received_at,
            "data": self.data,
        }
        if issubclass(self.event_class, UnrecognizedEvent):
            fields["notification_type"] = self.notification_type
        return self.event_class(**fields)

    def to_stored(self, mapper: Mapper[str]) -> StoredEvent:
        """The event as the log stores it (eventsourcing's mapper); the log numbers it when appending."""
        return mapper.to_stored_event(self.to_domain_event(UNNUMBERED))


@dataclass(frozen=True, slots=True)
class Appended:
    position: int
    stream_id: str
    version: int
    duplicate: bool


class StreamChangedError(Exception):
    """The stream moved on from the version a decision was taken at: decide again on its new state."""

    def __init__(self, stream_id: str, expected_version: int, head: int) -> None:
        msg = f"stream {stream_id!r} is at version {head}, not {expected_version} as the decision expected"
        super().__init__(msg)
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.head = head


_APPEND = (
    "SELECT position, stream_id, version, duplicate FROM append_events("
    "$1::text[], $2::text[], $3::text[], $4::jsonb[], $5::bytea[], $6::jsonb[], $7::text[], $8::timestamptz[])"
    " ORDER BY ord"
)
_COPY_COLUMNS = ("stream_id", "version", "type", "topic", "payload", "raw", "metadata", "dedupe_key", "received_at")
_HEADS = (
    "SELECT s.stream_id, (SELECT max(e.version) FROM events e WHERE e.stream_id = s.stream_id)"
    " FROM unnest($1::text[]) AS s(stream_id)"
)
_STREAM_HEAD = "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1"
UNNUMBERED = 0
"""The version a domain event carries while it is mapped: eventsourcing's mapper leaves the version out of
the stored state, so an event is mapped first and numbered by the log, under its append lock."""


def _numbered(
    batch: Sequence[NewEvent], stored: Sequence[StoredEvent], known: set[str], heads: dict[str, int]
) -> tuple[list[tuple[Any, ...]], list[bool]]:
    """The rows to copy (`_COPY_COLUMNS`), each fresh event numbered on from its stream's head, and for each
    event whether it is fresh: a key already in the log, or earlier in the batch, is a duplicate."""
    seen, heads = set(known), dict(heads)
    rows: list[tuple[Any, ...]] = []
    appended: list[bool] = []
    for event, stored_event in zip(batch, stored, strict=True):
        fresh = event.dedupe_key not in seen
        appended.append(fresh)
        if fresh:
            seen.add(event.dedupe_key)
            version = heads[event.stream_id] = heads[event.stream_id] + 1
            rows.append((event.stream_id, version, event.notification_type, stored_event.topic, stored_event.state,
                         event.raw, event.metadata, event.dedupe_key, event.received_at))  # fmt: skip
    return rows, appended


class EventLog:
    def __init__(self, pool: Pool, mapper: Mapper[str]) -> None:
        self._pool = pool
        self.mapper = mapper
        """What maps each event to its stored form, as its door converts it, and back when read."""

    async def append(self, batch: Sequence[NewEvent], stored: Sequence[StoredEvent]) -> list[Appended]:
        """Append the batch in one statement; events whose dedupe key is known come back as duplicates."""
        with UnavailableGuard("event log"):
            async with self._pool.acquire() as conn:
                return await self.append_on(conn, batch, stored)

    async def append_on(
        self, conn: Connection, batch: Sequence[NewEvent], stored: Sequence[StoredEvent]
    ) -> list[Appended]:
        """Append on `conn`, in its transaction if one is open (`sql/repeatable/append_events.sql`); `stored` is
        the batch mapped by `NewEvent.to_stored`.

        That transaction must be READ COMMITTED (the default): the function reads the streams' heads
        after taking the append lock, which a snapshot taken earlier would not show.
        """
        rows = await conn.fetch(
            _APPEND,
            [e.stream_id for e in batch],
            [e.notification_type for e in batch],
            [s.topic for s in stored],
            [s.state for s in stored],
            [e.raw for e in batch],
            [e.metadata for e in batch],
            [e.dedupe_key for e in batch],
            [e.received_at for e in batch],
        )
        return [Appended(row["position"], row["stream_id"], row["version"], row["duplicate"]) for row in rows]

    async def append_expecting(self, event: NewEvent, expected_version: int) -> Appended:
        """Append `event` only if its stream is still at `expected_version` (0: no event yet), else raise
        StreamChangedError: for a decision taken on the stream's state, which an append landing in between
        would make stale. The head is checked under the append lock, in the append's transaction, so no
        other append can come between the check and this one."""
        stored = event.to_stored(self.mapper)
        with UnavailableGuard("event log"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
                head = await conn.fetchval(_STREAM_HEAD, event.stream_id)
                if head != expected_version:
                    raise StreamChangedError(event.stream_id, expected_version, head)
                (appended,) = await self.append_on(conn, [event], [stored])
                return appended

    async def copy_append_on(
        self, conn: Connection, batch: Sequence[NewEvent], stored: Sequence[StoredEvent]
    ) -> list[bool]:
        """Append a large batch with COPY on `conn`, in its open transaction; True for each event appended,
        False for a duplicate. No positions come back: an import or a Kinesis page needs only the counts.
        `stored` is the batch mapped by `NewEvent.to_stored`, each event as its door converted it, so that
        an import maps a chunk while the one before it is appended.

        What `append_events` does in SQL is done here around a COPY, under the same append lock: the known
        dedupe keys and the streams' heads are read, the fresh events numbered, then copied. COPY writes
        rows in bulk, where the function's INSERT writes them one by one after numbering them in SQL.
        A row the database refuses fails the whole batch: the caller appends it the usual way instead.
        """
        await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
        keys = [event.dedupe_key for event in batch]
        known = {
            row[0] for row in await conn.fetch("SELECT dedupe_key FROM events WHERE dedupe_key = ANY($1::text[])", keys)
        }
        heads = {row[0]: row[1] or 0 for row in await conn.fetch(_HEADS, list({e.stream_id for e in batch}))}
        rows, appended = _numbered(batch, stored, known, heads)
        if rows:
            await conn.copy_records_to_table("events", records=rows, columns=_COPY_COLUMNS)
            await conn.execute("SELECT pg_notify($1, '')", NOTIFY_CHANNEL)
        return appended

    async def stream(self, stream_id: str, after_version: int, limit: int) -> list[asyncpg.Record]:
        """A page of an entity's timeline, oldest first, with the transport metadata."""
        return await self._pool.fetch(
            "SELECT position, version, type, payload->'data' AS data, metadata, received_at"
            " FROM events WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3",
            stream_id,
            after_version,
            limit,
        )

    async def domain_events(self, stream_id: str) -> list[TrackerEvent]:
        """The stream as eventsourcing domain events, decoded by the library's mapper (upcast, if their class
        has a newer `class_version`), oldest first."""
        rows = await self._pool.fetch(
            "SELECT version, topic, payload::text AS state FROM events WHERE stream_id = $1 ORDER BY version",
            stream_id,
        )
        events: list[TrackerEvent] = []
        for row in rows:
            stored = StoredEvent(stream_id, row["version"], row["topic"], row["state"].encode())
            events.append(self.mapper.to_domain_event(stored))  # type: ignore[arg-type]
        return events

    async def head(self) -> int:
        return int(await self._pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM events"))
