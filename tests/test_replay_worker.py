"""The rebuild's worker process: what it reports travels whole, and a worker that fails says why."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest

from tracker import Tracker
from tracker.domain.recorded import Recorded
from tracker.projecting.folding import Failure
from tracker.projecting.replay import StreamRange
from tracker.projecting.replay_worker import ReplayWorkerError, decode_failure, encode_failure, run_worker

from .waiting import eventually


def test_a_failure_comes_back_from_a_worker_as_it_left() -> None:
    event = Recorded(
        12, "installation:i-1", 3, "write.async.done", {"objectName": "o", "errors": ["é", None, {"a": [1.5]}]},
        datetime(2026, 11, 27, 9, 30, 1, 123456, tzinfo=UTC),
    )  # fmt: skip
    failure = Failure("i-1", event, "KeyError: 'success'")

    assert decode_failure(orjson.loads(orjson.dumps(encode_failure(failure)))) == failure  # as on the pipe


async def test_a_worker_that_cannot_replay_fails_with_what_it_said() -> None:
    pages: list[int] = []

    async def on_page(events: int, failures: list[Failure]) -> None:
        pages.append(events)

    nowhere = "postgresql://tracker@127.0.0.1:1/none"  # nothing listens on port 1
    with pytest.raises(ReplayWorkerError, match=r"(?s)exited with 1:.*Connection refused"):
        await run_worker(nowhere, "installations", StreamRange("installation:", "installation;"), 10, on_page)
    assert pages == []


async def test_a_cancelled_replay_kills_its_worker(tracker: Tracker) -> None:
    # The worker's sessions look for a closed client while they wait (asyncpg passes the URL's parameters on).
    url = f"{tracker.database_url}{'&' if '?' in tracker.database_url else '?'}client_connection_check_interval=100ms"
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")  # the worker's first read waits
            streams = StreamRange("installation:", "installation;")
            replaying = asyncio.create_task(run_worker(url, "installations", streams, 10, _ignored))
            waiting_sql = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%payload%'"
            )
            await eventually(lambda: tracker.pool.fetchval(waiting_sql))  # the worker runs, and waits

            replaying.cancel()
            with pytest.raises(asyncio.CancelledError):
                await replaying

            # Killed, its socket closed: its waiting session notices and ends (a live worker's would wait on).
            await eventually(lambda: _none_left(tracker, waiting_sql))
    finally:
        await holder.close()


async def _ignored(events: int, failures: list[Failure]) -> None:
    pass


async def _none_left(tracker: Tracker, sql: str) -> bool:
    return await tracker.pool.fetchval(sql) == 0
