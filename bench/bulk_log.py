"""A large event log, fast: genuine tracker rows built in worker processes and COPYed into `events`.

Each row is what an append would store: the notification parsed by the tracker's parser, routed and
keyed by its pipeline (`new_event`), mapped by its eventsourcing mapper, with stream versions counted
here in log order. Building a row costs about as much Python as PostgreSQL spends storing it, so
worker processes build slices of the log while this process streams the finished slices in with
`COPY`, in log order: a million events take a minute or two, not the hour one request each would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from bench import payloads
from tracker.ingest.parsing import parse_record
from tracker.ingest.pipeline import Delivery, new_event
from tracker.store.database import init_connection
from tracker.store.event_log import UNNUMBERED
from tracker.store.mapper import create_mapper

COLUMNS = ("stream_id", "version", "type", "topic", "payload", "raw", "metadata", "dedupe_key", "received_at")
SLICE = 10_000
"""Events a worker builds at a time: one COPY each."""
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
Row = tuple[Any, ...]


class BulkLogError(AssertionError):
    """The log does not hold the events that were written into it."""


@dataclass(frozen=True, slots=True)
class Loaded:
    events: int
    seconds: float


def notifications(count: int, installations: int, seed: int) -> Iterator[bytes]:
    """The log's notifications in order, as NDJSON lines (also what `bench.bulk_import` imports)."""
    for notification in payloads.stream(count, installations, seed):
        yield orjson.dumps(notification)


def _build(lines: list[bytes], first_index: int) -> list[Row]:
    """Rows for `lines`, the notifications from `first_index` on; version 0 until numbered in order."""
    mapper = create_mapper()
    rows: list[Row] = []
    for index, raw in enumerate(lines, start=first_index):
        received_at = _EPOCH + timedelta(milliseconds=index)
        event = new_event(parse_record(raw), Delivery("import", raw, f"bulk_{index:09d}", received_at=received_at))
        stored = mapper.to_stored_event(event.to_domain_event(UNNUMBERED))
        rows.append((
            event.stream_id, 0, event.notification_type, stored.topic, stored.state,
            raw, event.metadata, event.dedupe_key, received_at,
        ))  # fmt: skip
    return rows


def _slices(count: int, installations: int, seed: int) -> Iterator[tuple[list[bytes], int]]:
    lines = notifications(count, installations, seed)
    first = 0
    while batch := list(itertools.islice(lines, SLICE)):
        yield batch, first
        first += len(batch)


async def load(url: str, count: int, installations: int, seed: int = 7, workers: int = 2) -> Loaded:
    """Write `count` events about `installations` installations into the (empty) log at `url`."""
    started = time.perf_counter()
    versions: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)
        if await conn.fetchval("SELECT count(*) FROM events"):
            msg = "the bulk log needs an empty event log"
            raise BulkLogError(msg)
        with ProcessPoolExecutor(workers) as pool:
            slices = _slices(count, installations, seed)
            pending = [loop.run_in_executor(pool, _build, *piece) for piece in itertools.islice(slices, workers + 1)]
            while pending:
                rows = await pending.pop(0)
                if (piece := next(slices, None)) is not None:
                    pending.append(loop.run_in_executor(pool, _build, *piece))
                numbered = []
                for row in rows:  # in log order: the stream's next version
                    version = versions[row[0]] = versions.get(row[0], 0) + 1
                    numbered.append((row[0], version, *row[2:]))
                await conn.copy_records_to_table("events", records=numbered, columns=COLUMNS)
        await conn.execute("ANALYZE events")
        stored = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    if stored != count:
        msg = f"the bulk log holds {stored} events, {count} were written"
        raise BulkLogError(msg)
    return Loaded(count, time.perf_counter() - started)
