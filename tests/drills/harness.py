"""What every drill does around its fault: serve, load, wait for the read models, stop, audit."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.harness import new_secret, tracker_env

from .audit import Audit, audit_log, audit_read_models
from .deliveries import Delivery, Record, Sender
from .trackers import DrillError, Ports, ServeProcess, wait_caught_up, wait_following


@dataclass(frozen=True, slots=True)
class Setup:
    database_url: str
    secret: str
    work: Path
    ports: Ports


def setup(database_url: str, work: Path, ports: Ports) -> Setup:
    return Setup(database_url, new_secret(), work, ports)


@contextlib.asynccontextmanager
async def served(
    where: Setup, name: str, count: int = 1, env: Mapping[str, str] | None = None
) -> AsyncIterator[list[ServeProcess]]:
    """`count` `tracker serve` processes on the drill's database, each following the log before the block
    starts; stopped (SIGTERM) when it ends."""
    taken: set[int] = set()
    environment = tracker_env(where.database_url, where.secret, **(env or {}))
    names = [f"{name}-{index + 1}" for index in range(count)] if count > 1 else [name]
    serves = [ServeProcess(each, where.ports.take(taken), environment, where.work) for each in names]
    try:
        async with aiohttp.ClientSession() as http:
            for serve in serves:
                await serve.start()
            for serve in serves:
                await wait_following(http, serve, 90)
        yield serves
    finally:
        stopped = await asyncio.gather(*(serve.stop() for serve in serves), return_exceptions=True)
        for outcome in stopped:
            if isinstance(outcome, BaseException):
                raise outcome


async def under_load(
    sender: Sender,
    deliveries: Sequence[Delivery],
    workers: int,
    time_limit: float,
    faults: Callable[[asyncio.Task[None], float], Awaitable[None]],
) -> float:
    """Send every delivery (re-sending as needed) while `faults(sending, deadline)` runs; return the seconds
    the load took. An error in `faults` ends the load."""
    started = time.monotonic()
    deadline = started + time_limit
    sending = asyncio.create_task(sender.send_all(deliveries, workers, deadline))
    try:
        await faults(sending, deadline)
        await sending
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    return time.monotonic() - started


async def until_acknowledged(record: Record, count: float, sending: asyncio.Task[None], deadline: float) -> int:
    """Wait until `count` ids are acknowledged; return how many are. DrillError if the load ends first."""
    while len(record.acknowledged) < count:
        if sending.done() or time.monotonic() > deadline:
            msg = f"the load ended at {len(record.acknowledged):,} acknowledged, before a fault due at {count:,.0f}"
            raise DrillError(msg)
        await asyncio.sleep(0.01)
    return len(record.acknowledged)


async def no_faults(sending: asyncio.Task[None], deadline: float) -> None:
    """The fault schedule of a drill that injects none."""


async def settle(serves: Sequence[ServeProcess], starts: int = 1) -> None:
    """After the load: each server still runs (started `starts` times, so never behind the drill's back),
    and the read models have folded the whole log."""
    for serve in serves:
        if not serve.alive() or serve.starts != starts:
            msg = f"{serve.name} stopped or was restarted unasked:\n{serve.tail()}"
            raise DrillError(msg)
    async with aiohttp.ClientSession() as http:
        await wait_caught_up(http, serves[0], 120)


async def audit(
    database_url: str, record: Record, serves: Sequence[ServeProcess], *, every_id_acknowledged: bool = True
) -> Audit:
    """The log against the sender's record, the read models against a rebuild, no orphaned child process;
    and, unless the drill sends some deliveries only once, that every id sent was acknowledged in the end."""
    result = await audit_log(database_url, record)
    await audit_read_models(database_url, result)
    result.problems += [orphan for serve in serves for orphan in serve.orphans]
    if every_id_acknowledged and record.given_up:
        result.problems.append(f"{len(record.given_up):,} ids never acknowledged within the drill's time")
    return result
