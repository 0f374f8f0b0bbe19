"""Scenario `query`: GET /v1/installations/{id} on a small log and on a large one.

Each log is written by `bench.bulk_log` and folded by `Tracker.rebuild()`, then served by `tracker serve
--projections none` (nothing folds while it is timed). The load generator (`bench.loadgen`, its own
process) sends one request at a time, so the figures are latencies, not queueing: installations
drawn at random, the same draw for both sizes. The goal is a p99 under 5 ms at both sizes, and flat:
the large log's p99 at most 1.5x the small one's. Repetitions interleave the two servers.
"""

from __future__ import annotations

import contextlib
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import bulk_log, database, payloads
from bench.children import LOOPBACK, PYTHON, Child, child_env, free_port, run_to_end, spawn, wait_listening
from bench.cpu import CpuMeter, find_postmaster
from bench.rebuild import embedded_tracker
from bench.stats import Spread
from bench.table import Row
from bench.webhook import new_secret

GOAL_P99_MS = 5.0
GOAL_FLAT = 1.5
_SAMPLE = 2_000
"""Distinct installations asked for, in random order."""
_INSTALLATIONS_PER_EVENT = 0.1


class QueryCheckError(AssertionError):
    """A query answered other than 200, or a log that did not load or fold as planned."""


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


async def prepare(url: str, events: int, installations: int) -> float:
    """Migrate, COPY the log in and rebuild the read models; return the seconds it took."""
    started = time.perf_counter()
    async with embedded_tracker(url) as tracker:
        await bulk_log.load(url, events, installations)
        folded = await tracker.rebuild()
        if not folded or sum(folded.values()) < events:
            msg = f"the rebuild folded {folded}, fewer than the {events} events in the log"
            raise QueryCheckError(msg)
    return time.perf_counter() - started


def _paths(installations: int, work_dir: Path, events: int) -> Path:
    """The installations asked for: a seeded draw, so both sizes answer the same mix of ids where they can."""
    rng = random.Random(5)
    numbers = [rng.randrange(installations) for _ in range(_SAMPLE)]
    path = work_dir / f"query-paths-{events}.txt"
    path.write_text("\n".join(f"/v1/installations/{payloads.installation_id(n)}" for n in numbers))
    return path


@contextlib.asynccontextmanager
async def _server(url: str, events: int, work_dir: Path) -> AsyncIterator[tuple[Child, int]]:
    port = free_port()
    command = [PYTHON, "-m", "tracker", "serve", "--host", LOOPBACK, "--port", str(port), "--projections", "none"]
    env = child_env({"TRACKER_DATABASE_URL": url, "TRACKER_WEBHOOK_SECRET": new_secret()})
    async with spawn(f"query-serve-{events}", command, env, work_dir) as child:
        await wait_listening(child, port)
        yield child, port


async def _one(child: Child, port: int, url: str, events: int, sizes: Sizes, *, work_dir: Path, repetition: int) -> Run:
    out = work_dir / f"query-load-{events}-{repetition}.json"
    options = {
        "--url": f"http://{LOOPBACK}:{port}",
        "--paths": str(_paths(sizes.installations(events), work_dir, events)),
        "--out": str(out),
        "--requests": str(sizes.requests),
        "--warmup": str(sizes.warmup),
        "--workers": "1",
        "--time-limit": "300",
    }
    meter = CpuMeter(child.pid, await find_postmaster(url))
    generator = [PYTHON, "-m", "bench.loadgen", *itertools.chain.from_iterable(options.items())]
    meter.start()
    async with spawn(f"query-loadgen-{events}-{repetition}", generator, child_env({}), work_dir) as sender:
        await run_to_end(sender, 420)
    server_cpu, database_cpu = meter.stop()
    if child.process.returncode is not None:
        raise child.failure("died during the run")
    load: dict[str, Any] = orjson.loads(out.read_bytes())
    other = {code: n for code, n in load["statuses"].items() if code != "200"}
    if other or load["errors"]:
        msg = f"query at {events:,} events: answers other than 200: {other}, client errors: {load['errors']}"
        raise QueryCheckError(msg)
    answered = load["ok_total"]
    return Run(
        events,
        repetition,
        load,
        server_cpu / answered * 1e6,
        None if database_cpu is None else database_cpu / answered * 1e6,
    )


async def measure(server_url: str, sizes: Sizes, repetitions: int, work_dir: Path, large_url: str | None) -> list[Run]:
    """With `large_url`, a database already holding the large log, folded (the rebuild scenario's)."""
    runs: list[Run] = []
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
            child, port = await stack.enter_async_context(_server(url, events, work_dir))
            servers.append((events, url, child, port))
        for repetition in range(1, repetitions + 1):
            for events, url, child, port in servers:
                run = await _one(child, port, url, events, sizes, work_dir=work_dir, repetition=repetition)
                print(
                    f"  query {events:>9,} events #{repetition}: p50 {run.load['p50_ms']:5.2f} ms"
                    f"  p99 {run.load['p99_ms']:5.2f} ms  server CPU {run.server_cpu_us:5.0f} us/request",
                    flush=True,
                )
                runs.append(run)
    return runs


def rows(runs: Sequence[Run], sizes: Sizes) -> list[Row]:
    def spread(events: int, value: Callable[[Run], float | None]) -> Spread | None:
        values = [v for run in runs if run.events == events and (v := value(run)) is not None]
        return Spread.of(values) if values else None

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
        ours, theirs = spread(sizes.large, value), spread(sizes.small, value)
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
