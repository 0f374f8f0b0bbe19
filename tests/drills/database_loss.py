"""Drill `database-loss`: PostgreSQL stops (immediate mode, as in a crash) for a while under load, then starts.

On a cluster of the drill's own, never the one the other drills share. While it is down, every answer, to
a delivery and to a read, must be a 503 with `Retry-After` (no 500, no dropped connection, no hang); once
it is back, the same `tracker serve` process (never restarted) must answer 2xx again and its read models
catch up; the audit then checks that nothing acknowledged was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from .deliveries import SHED, LoadPlan, Record, Sender, session
from .harness import Setup, audit, served, settle, under_load, until_acknowledged
from .postgres import Cluster
from .report import DrillResult, answers
from .trackers import ServeProcess


@dataclass(frozen=True, slots=True)
class OutagePlan(LoadPlan):
    outage: float = 10.0
    """Seconds PostgreSQL stays down."""
    at: float = 0.3
    """The share of ids acknowledged when it stops."""
    recovery_bound: float = 30.0
    """Seconds after PostgreSQL is back within which a delivery must get a 2xx again."""
    seed: int = 10


@dataclass(slots=True)
class Outage:
    """What was heard while the database was down, from requests begun and answered in that time."""

    down: float = 0.0
    restarting: float = 0.0
    back: float = 0.0
    acknowledged_before: int = 0
    deliveries: Counter[int] = field(default_factory=Counter)
    reads: Counter[int] = field(default_factory=Counter)
    reads_without_retry_after: int = 0

    def count_deliveries(self, record: Record) -> None:
        for begun, ended, status in record.timeline:
            if self.down <= begun and ended < self.restarting:
                self.deliveries[status] += 1

    def recovery(self, record: Record) -> float | None:
        """Seconds from PostgreSQL's return to the start of the first request that then got a 2xx."""
        first = min(
            (begun for begun, _, status in record.timeline if begun >= self.back and status == 200), default=None
        )
        return None if first is None else first - self.back


async def run(where: Setup, outage: OutagePlan) -> DrillResult:
    """`where.database_url` is not used: the drill stops a cluster of its own."""
    deliveries = outage.planned()
    distinct = len({d.msg_id for d in deliveries})
    record = Record()
    seen = Outage()
    cluster = Cluster(where.work / "database-loss-postgres", where.ports.take(set()))
    await cluster.init()
    await cluster.start()
    try:
        async with served(Setup(cluster.url, where.secret, where.work, where.ports), "outage-serve") as (serve,):

            async def stop_and_start(sending: asyncio.Task[None], deadline: float) -> None:
                seen.acknowledged_before = await until_acknowledged(record, outage.at * distinct, sending, deadline)
                await cluster.stop()
                seen.down = time.monotonic()
                await _read_while_down(serve, seen, seen.down + outage.outage)
                seen.restarting = time.monotonic()
                await cluster.start()
                seen.back = time.monotonic()

            async with session(outage.workers) as http:
                sender = Sender(http, where.secret, lambda _: serve.webhook, record=record, seed=outage.seed)
                seconds = await under_load(sender, deliveries, outage.workers, outage.time_limit, stop_and_start)
            await settle([serve])
        result = await audit(cluster.url, record, [serve])
    finally:
        with contextlib.suppress(Exception):
            await cluster.stop("fast")
    seen.count_deliveries(record)
    recovery = seen.recovery(record)
    _check(seen, recovery, outage, result.problems)
    down_for = seen.restarting - seen.down
    notes = [
        f"PostgreSQL stopped (immediate) at {seen.acknowledged_before:,}/{distinct:,} acknowledged for"
        f" {down_for:.1f} s; deliveries meanwhile: {_counts(seen.deliveries)}; reads meanwhile: {_counts(seen.reads)}",
        f"first 2xx {recovery:.2f} s after PostgreSQL was back, from the same tracker process"
        if recovery is not None
        else "no 2xx after PostgreSQL was back",
        f"answers: {answers(record)}",
    ]
    return DrillResult(
        "database-loss",
        record.requests,
        seconds,
        f"PostgreSQL down {down_for:.0f} s",
        result,
        notes,
        {"statuses": {str(k): v for k, v in record.statuses.items()}, "recovery_s": recovery},
    )


def _check(seen: Outage, recovery: float | None, outage: OutagePlan, problems: list[str]) -> None:
    wrong = {status: n for status, n in seen.deliveries.items() if status not in SHED}
    if wrong or not seen.deliveries:
        problems.append(f"deliveries while the database was down got {dict(seen.deliveries)} (0: no answer), not 503")
    wrong_reads = {status: n for status, n in seen.reads.items() if status not in SHED}
    if wrong_reads or not seen.reads:
        problems.append(f"reads while the database was down got {dict(seen.reads)} (0: no answer), not 503")
    if seen.reads_without_retry_after:
        problems.append(f"{seen.reads_without_retry_after} read answers while it was down lacked Retry-After")
    if recovery is None or recovery > outage.recovery_bound:
        problems.append(f"no 2xx within {outage.recovery_bound:.0f} s of the database's return")


async def _read_while_down(serve: ServeProcess, seen: Outage, until: float) -> None:
    """Ask for the status and a list, in turn, until `until`, recording each answer (0: none)."""
    paths = ("/v1/status", "/v1/installations?limit=5")
    async with session(2, timeout=30) as http:
        index = 0
        while time.monotonic() < until:
            index += 1
            try:
                async with http.get(serve.base + paths[index % len(paths)]) as response:
                    await response.read()
                    seen.reads[response.status] += 1
                    if response.status in SHED and "Retry-After" not in response.headers:
                        seen.reads_without_retry_after += 1
            except (aiohttp.ClientError, TimeoutError):
                seen.reads[0] += 1
            await asyncio.sleep(min(0.25, max(until - time.monotonic(), 0)))


def _counts(counter: Counter[int]) -> str:
    return ", ".join(f"{status or 'no answer'}: {n:,}" for status, n in sorted(counter.items())) or "none"
