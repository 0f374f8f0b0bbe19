"""Scenario `query`: GET /v1/installations/{id} on a small log and on a large one.

Each log is written by `bench.bulk_log` and folded by `Tracker.rebuild()`, then served by `tracker serve
--projections none` (nothing folds while it is timed). The load generator (`bench.loadgen`, its own
process) sends one request at a time, so the figures are latencies, not queueing: installations
drawn at random, the same draw for both sizes. The goal is a p99 under 5 ms at both sizes, and flat:
the large log's p99 at most 1.5x the small one's. Repetitions interleave the two servers.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import bulk_log, database, payloads
from bench.harness import (
    CheckError,
    Listening,
    check_answers,
    command,
    drive,
    embedded_tracker,
    interleaved,
    per_request_us,
    tracker_serve,
)
from bench.stats import Spread, spread
from bench.table import Row

GOAL_P99_MS = 5.0
GOAL_FLAT = 1.5
_SAMPLE = 2_000
"""Distinct installations asked for, in random order."""
_INSTALLATIONS_PER_EVENT = 0.1


@dataclass(frozen=True, slots=True)
class Sizes:
    small: int
    large: int
    """Events in each log; installations are a tenth of them."""
    requests: int
    warmup: int

    def installations(self, events: int) -> int:
        return max(1, int(events * _INSTALLATIONS_PER_EVENT))


@dataclass(frozen=True, slots=True)
class Run:
    events: int
    repetition: int
    load: dict[str, Any]
    """The generator's LoadResult."""
    server_cpu_us: float
    database_cpu_us: float | None


@dataclass(frozen=True, slots=True)
class Served:
    """A log of `events` events, folded, and `tracker serve` on it."""

    events: int
    url: str
    server: Listening


async def prepare(url: str, events: int, installations: int) -> float:
    """Migrate, COPY the log in and rebuild the read models; return the seconds it took."""
    started = time.perf_counter()
    async with embedded_tracker(url) as tracker:
        await bulk_log.load(url, events, installations)
        folded = await tracker.rebuild()
        if not folded or sum(folded.values()) < events:
            msg = f"query: the rebuild folded {folded}, fewer than the {events} events in the log"
            raise CheckError(msg)
    return time.perf_counter() - started


def _paths(installations: int, work_dir: Path, events: int) -> Path:
    """The installations asked for: a seeded draw, so both sizes answer the same mix of ids where they can."""
    rng = random.Random(5)
    numbers = [rng.randrange(installations) for _ in range(_SAMPLE)]
    path = work_dir / f"query-paths-{events}.txt"
    path.write_text("\n".join(f"/v1/installations/{payloads.installation_id(n)}" for n in numbers))
    return path


async def _one(served: Served, sizes: Sizes, *, work_dir: Path, repetition: int) -> Run:
    events = served.events
    out = work_dir / f"query-load-{events}-{repetition}.json"
    generator = command(
        "bench.loadgen",
        url=served.server.base,
        paths=_paths(sizes.installations(events), work_dir, events),
        out=out,
        requests=sizes.requests,
        warmup=sizes.warmup,
        workers=1,
        time_limit=300,
    )
    name = f"query-loadgen-{events}-{repetition}"
    driven = await drive(served.server, name, generator, out, work_dir=work_dir, timeout=420, database_url=served.url)
    load = driven.result
    check_answers(f"query at {events:,} events", load)
    answered = load["ok_total"]
    return Run(
        events, repetition, load, driven.server_cpu_s / answered * 1e6, per_request_us(driven.database_cpu_s, answered)
    )


async def measure(server_url: str, sizes: Sizes, repetitions: int, work_dir: Path, large_url: str | None) -> list[Run]:
    """With `large_url`, a database already holding the large log, folded (the rebuild scenario's)."""
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for events in (sizes.small, sizes.large):
            if events == sizes.large and large_url is not None:
                url = large_url
                print(f"  query: {events:,} events: the rebuild scenario's log", flush=True)
            else:
                url = await stack.enter_async_context(database.throwaway_database(server_url))
                seconds = await prepare(url, events, sizes.installations(events))
                print(f"  query: {events:,} events loaded and folded in {seconds:.1f} s", flush=True)
            server = await stack.enter_async_context(
                tracker_serve(f"query-serve-{events}", url, work_dir, "--projections", "none")
            )
            servers.append(Served(events, url, server))

        async def once(served: Served, repetition: int) -> Run:
            return await _one(served, sizes, work_dir=work_dir, repetition=repetition)

        def report(served: Served, repetition: int, run: Run) -> str:
            return (
                f"query {served.events:>9,} events #{repetition}: p50 {run.load['p50_ms']:5.2f} ms"
                f"  p99 {run.load['p99_ms']:5.2f} ms  server CPU {run.server_cpu_us:5.0f} us/request"
            )

        return await interleaved(repetitions, servers, once, report)


def rows(runs: Sequence[Run], sizes: Sizes) -> list[Row]:
    def spread_at(events: int, value: Callable[[Run], float | None]) -> Spread | None:
        return spread(value(run) for run in runs if run.events == events)

    baseline = f"the same, {sizes.small:,} events in the log"
    table = []
    measures: tuple[tuple[str, Callable[[Run], float | None], int], ...] = (
        ("p50 ms", lambda r: r.load["p50_ms"], 2),
        ("p99 ms", lambda r: r.load["p99_ms"], 2),
        ("server CPU us/request", lambda r: r.server_cpu_us, 0),
        ("PostgreSQL CPU us/request", lambda r: r.database_cpu_us, 0),
        ("generator CPU/wall %", lambda r: 100 * r.load["cpu_s"] / r.load["wall_s"], 0),
    )
    for measure, value, digits in measures:
        ours, theirs = spread_at(sizes.large, value), spread_at(sizes.small, value)
        goal, met = "", None
        if measure == "p99 ms" and ours is not None and theirs is not None:
            goal = f"< {GOAL_P99_MS:.0f} ms, <= {GOAL_FLAT}x"
            met = max(ours.median, theirs.median) < GOAL_P99_MS and ours.median <= GOAL_FLAT * theirs.median
        label = f"GET /v1/installations/{{id}} {measure}, {sizes.large:,} events, 1 at a time"
        table.append(Row("query", label, ours, baseline, theirs, goal, met, digits))
    return table


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def summary(sizes: Sizes) -> str:
    return (
        f"query: {sizes.small:,} and {sizes.large:,} events, {sizes.requests:,} sequential GETs per size after"
        f" {sizes.warmup:,} warm-up"
    )
