"""Leadership across real processes: two or three `tracker project` processes on one database, one leader
per read model; SIGKILL the leaders and the others take over and fold what arrived meanwhile."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from projections import READ_MODELS
from tracker import Tracker
from tracker.bootstrap import ALERTS_LEADERSHIP
from tracker.store.leadership import leadership_key
from tracker.store.locks import LEADERSHIP_TAG

from .conftest import MakeTracker
from .notifications import config, installation_event, new_id
from .waiting import eventually

_KEYS = {
    leadership_key(name) & 0xFFFF_FFFF: name for name in (*(model.name for model in READ_MODELS), ALERTS_LEADERSHIP)
}
"""Each read model's leadership, and the alert deliverer's: one process holds each."""
_CLASS = LEADERSHIP_TAG


@pytest.fixture
async def spawn(database_url: str) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    """Start `tracker project` processes named proc-N (their sessions' application_name); kill them after."""
    processes: list[asyncio.subprocess.Process] = []
    yield processes
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def start(processes: list[asyncio.subprocess.Process], database_url: str, count: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    for n in range(count):
        url = f"{database_url}{'&' if '?' in database_url else '?'}application_name=proc-{n}"
        processes.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tracker",
                "project",
                env={**env, "TRACKER_DATABASE_URL": url},
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        )


async def leaders(tracker: Tracker) -> dict[str, list[str]]:
    """Which processes hold each read model's leadership lock."""
    rows = await tracker.pool.fetch(
        "SELECT l.objid::bigint AS objid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1"
        " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        _CLASS,
    )
    held: dict[str, list[str]] = {name: [] for name in _KEYS.values()}
    for row in rows:
        held[_KEYS[row["objid"]]].append(row["application_name"])
    return held


async def folded(tracker: Tracker, installation_id: str, operations: int) -> bool:
    view = await tracker.installation(installation_id)
    return view is not None and view["objects"].get("o", {}).get("writes", {}).get("operations") == operations


@pytest.mark.parametrize("count", [2, 3])
async def test_one_leader_per_read_model_and_a_takeover_after_sigkill(
    make_tracker: MakeTracker, database_url: str, spawn: list[asyncio.subprocess.Process], count: int
) -> None:
    tracker = make_tracker(follow_projections=False)  # appends and reads; folds nothing itself
    await tracker.start()
    await start(spawn, database_url, count)
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))

    async def one_leader_each() -> dict[str, list[str]] | None:
        # Among the living: a killed process's session may hold its locks a moment longer, until PostgreSQL
        # reads the closed socket.
        alive = {f"proc-{n}" for n, process in enumerate(spawn) if process.returncode is None}
        held = await leaders(tracker)
        return held if all(len(holders) == 1 and holders[0] in alive for holders in held.values()) else None

    for round_number in range(1, count):
        held = await eventually(one_leader_each, timeout=60)
        await tracker.ingest(installation_event("write.async.done", installation_id, objectName="o", success=True,
                                                n=round_number))  # fmt: skip
        await eventually(lambda n=round_number: folded(tracker, installation_id, n), timeout=30)

        leader = held["installations"][0]
        victim = spawn[int(leader.removeprefix("proc-"))]
        victim.send_signal(signal.SIGKILL)  # no clean stop: the lock goes with the dead session
        await victim.wait()
        assert victim.returncode == -signal.SIGKILL

    held = await eventually(one_leader_each, timeout=60)
    survivors = {f"proc-{n}" for n, process in enumerate(spawn) if process.returncode is None}
    assert {holders[0] for holders in held.values()} == survivors  # the last one leads every read model
    await tracker.ingest(installation_event("write.async.done", installation_id, objectName="o", success=True, n=9))
    await eventually(lambda: folded(tracker, installation_id, count), timeout=30)
