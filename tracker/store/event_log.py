"""The event log in PostgreSQL: batched, deduplicated appends and reads by position or stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from eventsourcing.persistence import Mapper, StoredEvent

from tracker.domain.base import TrackerEvent, UnrecognizedEvent
from tracker.store.database import Connection, Pool
from tracker.store.errors import UnavailableGuard

NOTIFY_CHANNEL = "tracker_events"
_APPEND_LOCK = 0x7472_6163_6B02
"""Serialises appends, so positions commit in increasing order and readers never pass a late commit."""


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


@dataclass(frozen=True, slots=True)
class Appended:
    position: int
    stream_id: str
    version: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event read back from the log: what projections fold and timelines show."""

    position: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    received_at: datetime


_INSERT = """
INSERT INTO events (stream_id, version, type, topic, payload, raw, metadata, dedupe_key, received_at)
SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::jsonb[], $6::bytea[], $7::jsonb[],
                     $8::text[], $9::timestamptz[])
RETURNING position, dedupe_key
"""


class EventLog:
    def __init__(self, pool: Pool, mapper: Mapper[str]) -> None:
        self._pool = pool
        self._mapper = mapper

    async def append(self, batch: Sequence[NewEvent]) -> list[Appended]:
        """Append the batch in one transaction; events whose dedupe key is known come back as duplicates."""
        with UnavailableGuard("event log"):
            async with self._pool.acquire() as conn, conn.transaction():
                return await self._append(conn, batch)

    async def _append(self, conn: Connection, batch: Sequence[NewEvent]) -> list[Appended]:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _APPEND_LOCK)
        keys = [event.dedupe_key for event in batch]
        known: dict[str, Appended] = {
            row["dedupe_key"]: Appended(row["position"], row["stream_id"], row["version"], duplicate=True)
            for row in await conn.fetch(
                "SELECT dedupe_key, position, stream_id, version FROM events WHERE dedupe_key = ANY($1)", keys
            )
        }
        fresh: dict[str, NewEvent] = {}
        for event in batch:
            if event.dedupe_key not in known:
                fresh.setdefault(event.dedupe_key, event)
        if fresh:
            known.update(await self._insert(conn, list(fresh.values())))
        result = []
        seen: set[str] = set()
        for key in keys:
            outcome = known[key]
            # A key twice in one batch: the first is the append, the second a redelivery of it.
            result.append(replace(outcome, duplicate=outcome.duplicate or key in seen))
            seen.add(key)
        return result

    async def _insert(self, conn: Connection, events: list[NewEvent]) -> dict[str, Appended]:
        streams = list({event.stream_id for event in events})
        heads: dict[str, int] = {
            row["stream_id"]: row["head"]
            for row in await conn.fetch(
                "SELECT stream_id, max(version) AS head FROM events WHERE stream_id = ANY($1) GROUP BY stream_id",
                streams,
            )
        }
        stored: list[StoredEvent] = []
        for event in events:
            version = heads.get(event.stream_id, 0) + 1
            heads[event.stream_id] = version
            stored.append(self._mapper.to_stored_event(event.to_domain_event(version)))
        rows = await conn.fetch(
            _INSERT,
            [s.originator_id for s in stored],
            [s.originator_version for s in stored],
            [e.notification_type for e in events],
            [s.topic for s in stored],
            [s.state for s in stored],
            [e.raw for e in events],
            [e.metadata for e in events],
            [e.dedupe_key for e in events],
            [e.received_at for e in events],
        )
        position_of = {row["dedupe_key"]: row["position"] for row in rows}
        await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, str(max(position_of.values())))
        return {
            e.dedupe_key: Appended(position_of[e.dedupe_key], e.stream_id, s.originator_version, duplicate=False)
            for e, s in zip(events, stored, strict=True)
        }

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
        """The stream as eventsourcing domain events, decoded by the library's mapper."""
        rows = await self._pool.fetch(
            "SELECT version, topic, payload::text AS state FROM events WHERE stream_id = $1 ORDER BY version",
            stream_id,
        )
        events: list[TrackerEvent] = []
        for row in rows:
            stored = StoredEvent(stream_id, row["version"], row["topic"], row["state"].encode())
            events.append(self._mapper.to_domain_event(stored))  # type: ignore[arg-type]
        return events

    async def head(self) -> int:
        return int(await self._pool.fetchval("SELECT coalesce(max(position), 0) FROM events"))

    async def count(self) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM events"))

    async def count_after(self, position: int) -> int:
        return int(await self._pool.fetchval("SELECT count(*) FROM events WHERE position > $1", position))
