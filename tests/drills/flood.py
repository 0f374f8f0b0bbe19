"""Drill `flood`: ten times the sustainable rate, open loop, then normal service again.

The sustainable rate is measured first, in the same run (closed loop, 32 senders). The flood then starts
requests at ten times that rate whether or not earlier ones were answered, each its own task, up to a
cap of concurrent requests on the sender's side; a generator on the same two cores may not reach the
rate it aims at, and the notes say what it reached. The tracker must shed what it cannot take with 503
or 429 and `Retry-After` (its queue of notifications waiting for a commit is bounded), keep its memory
bounded (peak RSS is sampled), lose nothing it acknowledged, and soon answer a delivery with a 2xx again.
Flood deliveries are sent once (a shed one is not re-sent), so not every id ends up acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from bench.database import throwaway_database
from bench.open_files import raise_open_files_limit
from bench.stats import percentile

from .deliveries import SHED, Delivery, Record, Sender, endless, session
from .harness import Setup, audit, served, settle
from .report import DrillResult, answers
from .trackers import DrillError, ServeProcess

MIB = 1024 * 1024
SVIX_TIMEOUT = 15.0
"""Seconds Svix waits for an answer before it counts the attempt failed and retries later."""


@dataclass(frozen=True, slots=True)
class FloodPlan:
    seconds: float = 30.0
    """How long the flood lasts."""
    factor: float = 10.0
    """Its rate, as a multiple of the sustainable rate."""
    probe_seconds: float = 10.0
    """How long the sustainable rate is measured, before the flood and again after it."""
    workers: int = 32
    """Senders of the closed-loop measurements."""
    max_in_flight: int = 16_000
    """The flood's most concurrent requests (each a socket): more than the tracker's queue holds (2,000 by default)
    and what waits before it; the open-files limit must allow 1,000 more."""
    max_pending: int | None = None
    """The tracker's TRACKER_MAX_PENDING; None: its default (2,000). A short flood needs a smaller queue to fill."""
    rss_budget_mib: float = 1024.0
    """The tracker's peak RSS may exceed its RSS before the flood by at most this."""
    recovery_bound: float = 60.0
    """Seconds after the flood within which a delivery must get a 2xx again."""
    request_timeout: float = 120.0
    """Seconds a flood request may wait for its answer (Svix would give up at 15; this counts answers)."""
    installations: int = 2_000
    seed: int = 11


@dataclass(slots=True)
class Phases:
    """The figures of the flood's three phases: the closed loop before, the flood, the closed loop after."""

    before: float = 0.0
    """2xx a second, closed loop, before the flood."""
    target: float = 0.0
    capped: int = 0
    """Starts the sender's own cap of concurrent requests put off."""
    rss_before: int = 0
    recovery: float | None = None
    """Seconds from the flood's end to the first 2xx of a request sent after it."""
    after: float = 0.0


async def run(where: Setup, flood: FloodPlan) -> DrillResult:
    record = Record()
    """The closed-loop deliveries, before and after: each must get a 200."""
    flood_record = Record()
    probe_record = Record()
    """The deliveries sent one at a time after the flood until one gets a 2xx."""
    deliveries = endless(flood.installations, flood.seed)
    env = {} if flood.max_pending is None else {"TRACKER_MAX_PENDING": str(flood.max_pending)}
    _allow_open_files(flood.max_in_flight + 1_000)  # before the server starts: it inherits the limit
    async with throwaway_database(where.database_url) as url:
        async with served(Setup(url, where.secret, where.work, where.ports), "flood-serve", env=env) as (serve,):
            sampling = asyncio.create_task(_sample_rss(serve))
            try:
                async with session(flood.max_in_flight, flood.request_timeout) as http:
                    sender = Sender(http, where.secret, lambda _: serve.webhook, record=record, seed=flood.seed)
                    flooder = Sender(http, where.secret, lambda _: serve.webhook, record=flood_record, seed=flood.seed)
                    prober = Sender(http, where.secret, lambda _: serve.webhook, record=probe_record, seed=flood.seed)
                    phases = await _flood((sender, flooder, prober), deliveries, flood=flood, serve=serve)
            finally:
                sampling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampling
            await settle([serve])
        merged = _merged(record, flood_record, probe_record)
        result = await audit(url, merged, [serve], every_id_acknowledged=False)
    achieved = flood_record.requests / flood.seconds
    _check((record, flood_record), phases, serve.peak_rss, flood, result.problems)
    latencies = sorted(end - begun for begun, end, _ in flood_record.timeline) or [0.0]
    slow = sum(1 for latency in latencies if latency > SVIX_TIMEOUT)
    notes = [
        f"sustainable {phases.before:,.0f}/s measured first; the flood aimed at {phases.target:,.0f}/s for"
        f" {flood.seconds:.0f} s and reached {achieved:,.0f}/s; answers: {answers(flood_record)}",
        f"flood answers took p50 {percentile(latencies, 0.5):.1f} s, p99 {percentile(latencies, 0.99):.1f} s,"
        f" max {latencies[-1]:.1f} s; {slow:,} took over {SVIX_TIMEOUT:.0f} s (Svix would have retried them)",
        f"tracker RSS {phases.rss_before / MIB:,.0f} MiB before the flood, peak {serve.peak_rss / MIB:,.0f} MiB",
        f"first 2xx {phases.recovery:.1f} s after the flood's end (probes: {answers(probe_record)});"
        f" then {phases.after:,.0f}/s closed loop"
        if phases.recovery is not None
        else f"no 2xx after the flood (probes: {answers(probe_record)})",
    ]
    return DrillResult(
        "flood",
        flood_record.requests,
        flood.seconds,
        f"{flood.factor:.0f}x {phases.before:,.0f}/s for {flood.seconds:.0f} s",
        result,
        notes,
        {
            "sustainable_per_s": phases.before,
            "after_per_s": phases.after,
            "target_per_s": phases.target,
            "achieved_per_s": achieved,
            "flood_statuses": {str(k): v for k, v in flood_record.statuses.items()},
            "peak_rss_mib": serve.peak_rss / MIB,
            "rss_before_mib": phases.rss_before / MIB,
            "recovery_s": phases.recovery,
            "p99_s": percentile(latencies, 0.99),
            "over_svix_timeout": slow,
        },
    )


async def _flood(
    senders: tuple[Sender, Sender, Sender], deliveries: Iterator[Delivery], *, flood: FloodPlan, serve: ServeProcess
) -> Phases:
    """Measure, flood, probe until a 2xx, measure again; `senders`: closed loop, flood, probe."""
    sender, flooder, prober = senders
    phases = Phases()
    phases.before = await _closed_loop(sender, deliveries, flood.workers, flood.probe_seconds)
    phases.rss_before = serve.peak_rss = serve.sample_rss()
    phases.target = flood.factor * phases.before
    flooding, phases.capped = await _open_loop(flooder, deliveries, phases.target, flood.seconds, flood.max_in_flight)
    ended = time.monotonic()
    phases.recovery = await _recover(prober, deliveries, ended, flood.recovery_bound)
    if flooding:
        await asyncio.wait(flooding)
    phases.after = await _closed_loop(sender, deliveries, flood.workers, flood.probe_seconds)
    return phases


def _check(
    records: tuple[Record, Record], phases: Phases, peak_rss: int, flood: FloodPlan, problems: list[str]
) -> None:
    """Record the flood's failed checks in `problems`; `records`: the closed loops', the flood's."""
    record, flood_record = records
    if not any(status in SHED for status in flood_record.statuses):
        problems.append(
            f"the flood got no 503/429 ({flood_record.requests:,} requests; the sender's own cap of"
            f" {flood.max_in_flight:,} concurrent requests put off {phases.capped:,} more)"
        )
    if flood_record.errors:
        problems.append(f"flood requests with no answer: {dict(flood_record.errors)}")
    growth = (peak_rss - phases.rss_before) / MIB
    if growth > flood.rss_budget_mib:
        problems.append(f"RSS grew by {growth:,.0f} MiB in the flood (budget {flood.rss_budget_mib:,.0f} MiB)")
    if phases.recovery is None or phases.recovery > flood.recovery_bound:
        problems.append(f"no 2xx within {flood.recovery_bound:.0f} s of the flood's end")
    if set(record.statuses) - {200} or record.errors:
        problems.append(f"closed-loop answers before or after the flood other than 200: {answers(record)}")


async def _closed_loop(sender: Sender, deliveries: Iterator[Delivery], workers: int, seconds: float) -> float:
    """Send fresh deliveries with `workers` senders, each waiting for its answer, for `seconds`; return 2xx/s."""
    before = len(sender.record.acknowledged)
    started = time.monotonic()
    end = started + seconds

    async def work() -> None:
        while time.monotonic() < end:
            await sender.send(0, next(deliveries))

    await asyncio.gather(*(work() for _ in range(workers)))
    return (len(sender.record.acknowledged) - before) / (time.monotonic() - started)


async def _open_loop(
    sender: Sender, deliveries: Iterator[Delivery], rate: float, seconds: float, cap: int
) -> tuple[set[asyncio.Task[bool]], int]:
    """Start `rate` requests a second for `seconds`, answered or not, at most `cap` at once; return the
    requests still unanswered and how many starts the cap put off (they are not made up later)."""
    tasks: set[asyncio.Task[bool]] = set()
    started = time.monotonic()
    launched = capped = 0
    while (now := time.monotonic()) < started + seconds:
        due = int(rate * (now - started)) - launched
        for _ in range(due):
            if sender.in_flight >= cap:
                capped += 1
                continue
            task = asyncio.create_task(sender.send(0, next(deliveries)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        launched += due
        await asyncio.sleep(0.005)
    return set(tasks), capped


async def _recover(sender: Sender, deliveries: Iterator[Delivery], since: float, bound: float) -> float | None:
    """Send one delivery at a time until one gets a 2xx; return how long after `since` that answer came."""
    while time.monotonic() - since < bound:
        acknowledged = len(sender.record.acknowledged)
        await sender.send(0, next(deliveries))
        if len(sender.record.acknowledged) > acknowledged:
            return time.monotonic() - since
        await asyncio.sleep(0.1)
    return None


def _allow_open_files(needed: int) -> None:
    """Raise the soft limit of open files towards the hard one: each request in flight is a socket, here
    and in the server. DrillError if even the hard limit is too low."""
    if (hard := raise_open_files_limit(needed)) is not None:
        msg = f"the flood needs {needed:,} open files, the hard limit is {hard:,} (ulimit -Hn)"
        raise DrillError(msg)


async def _sample_rss(serve: ServeProcess) -> None:
    while True:
        serve.sample_rss()
        await asyncio.sleep(0.1)


def _merged(*records: Record) -> Record:
    """One record for the audit: each sender's ids are its own."""
    merged = Record()
    for each in records:
        merged.sent |= each.sent
        merged.acknowledged.update(each.acknowledged)
        merged.position_conflicts |= each.position_conflicts
        merged.first_stores.update(each.first_stores)
        merged.unexpected.update(each.unexpected)
        merged.shed_without_retry_after += each.shed_without_retry_after
    return merged
