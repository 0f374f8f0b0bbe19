"""The benchmark's own machinery: what it loads must be what the tracker stores, and its baselines must work.

Timings are not tested here (they belong to `python -m bench`); what is tested is that the figures
would mean something: the bulk-loaded log equals an ingested one, the library baselines store and
fold what they are given, and the latency probe reads visibility right.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest

from bench import bulk_log, library_projection, payloads
from bench.library_receiver import TABLE as LIBRARY_TABLE
from bench.library_receiver import Library, library_env
from bench.pacer import Probe
from tracker import Tracker

_ROWS = "SELECT stream_id, version, type, topic, payload->'data' AS data, raw FROM events ORDER BY position"


async def test_the_bulk_log_stores_what_ingest_stores(tracker: Tracker, database_url: str) -> None:
    for index, line in enumerate(bulk_log.notifications(300, 40, seed=7)):
        await tracker.ingest(line, delivery_id=f"ingest_{index}")
    ingested = [tuple(row) for row in await tracker.pool.fetch(_ROWS)]
    await tracker.pool.execute("TRUNCATE events")

    loaded = await bulk_log.load(database_url, 300, 40, seed=7, workers=1)

    assert loaded.events == 300
    assert [tuple(row) for row in await tracker.pool.fetch(_ROWS)] == ingested
    assert len({row[0] for row in ingested}) > 40  # installations, and their connections and destinations


async def test_the_bulk_log_refuses_a_log_that_is_not_empty(tracker: Tracker, database_url: str) -> None:
    await tracker.ingest(next(bulk_log.notifications(1, 1, seed=1)))
    with pytest.raises(bulk_log.BulkLogError):
        await bulk_log.load(database_url, 10, 2)


def test_library_settings_come_from_a_socket_url_and_a_tcp_url() -> None:
    socket = library_env("postgresql://postgres:@/bench_1?host=/tmp/pg/pgdata", pool_size=3)
    tcp = library_env("postgresql://ada:s%40cret@db.example:6543/tracker", pool_size=3)

    assert (socket["POSTGRES_HOST"], socket["POSTGRES_PORT"], socket["POSTGRES_DBNAME"]) == (
        "/tmp/pg/pgdata",
        "5432",
        "bench_1",
    )
    assert (tcp["POSTGRES_HOST"], tcp["POSTGRES_PORT"], tcp["POSTGRES_USER"], tcp["POSTGRES_PASSWORD"]) == (
        "db.example", "6543", "ada", "s@cret",
    )  # fmt: skip
    assert socket["POSTGRES_POOL_SIZE"] == "3"


async def test_the_library_receiver_appends_to_the_stream_and_ignores_a_redelivery(
    tracker: Tracker, database_url: str
) -> None:
    library = await asyncio.to_thread(Library, library_env(database_url, pool_size=2))
    try:
        await tracker.pool.execute(f"TRUNCATE {LIBRARY_TABLE}, library_deliveries")
        rng = random.Random(1)
        first, second = (
            payloads.notification(kind, 4, rng, 1) for kind in ("installation.created", "read.backfill.done")
        )
        now = datetime.now(UTC)
        positions = [
            await asyncio.to_thread(library.record, n["notificationType"], n["data"], now, f"d{i}")
            for i, n in enumerate((first, second))
        ]
        again = await asyncio.to_thread(library.record, second["notificationType"], second["data"], now, "d1")
        aggregate = await asyncio.to_thread(library.repository.get, "installation:inst-000004")
    finally:
        await asyncio.to_thread(library.close)

    assert positions[0] < positions[1]
    assert again == 0
    assert aggregate.version == 2
    assert aggregate.identity["installationId"] == "inst-000004"


async def test_the_library_runner_folds_the_slice_as_the_tracker_does(tracker: Tracker, database_url: str) -> None:
    for index, line in enumerate(bulk_log.notifications(120, 15, seed=3)):
        await tracker.ingest(line, delivery_id=f"slice_{index}")
    await tracker.pool.execute(f"DROP TABLE IF EXISTS {LIBRARY_TABLE}")
    await tracker.catch_up()

    result = await asyncio.to_thread(library_projection.replay, database_url, 120, 60)

    ours = await tracker.pool.fetch("SELECT installation_id AS key, doc->>'version' AS version FROM installation_view")
    theirs = await tracker.pool.fetch("SELECT key, doc->>'version' AS version FROM library_installations")
    assert result["read"] == 120
    assert len(ours) == 15
    assert sorted(map(tuple, theirs)) == sorted(map(tuple, ours))


def test_the_probe_sees_a_position_at_the_first_checkpoint_past_it() -> None:
    probe = Probe.__new__(Probe)
    probe.times, probe.positions = [1.0, 2.0, 3.0], [10, 25, 40]

    assert [probe.visible_at(position) for position in (1, 10, 11, 25, 40, 41)] == [1.0, 1.0, 2.0, 2.0, 3.0, None]
