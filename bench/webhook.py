"""Scenario `webhook`: the tracker and three baselines under the same load.

The baselines: the empty handler (the HTTP ceiling), the naive receiver (one INSERT per request) and
the eventsourcing library's `Application.save` called through a thread (`bench.library_receiver`). The
tracker runs twice: as `tracker serve` runs by default, its projection child folding every notification
into the read models on the same two cores, and with `--projections none`, ingesting alone, as the
baselines do (none of them projects anything), in two processes sharing the port (one event loop is what
bounds a lone ingesting process: it answers a burst of the 32 senders one request at a time, with a core
half idle).

Each server runs as its own process on a free loopback port, on a database of its own, and the
generator as another process; repetitions interleave the servers so a noisy minute hurts all three
alike. After each run every answer must be a 200 and the rows stored must equal the 200s.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import database, profile
from bench.children import LOOPBACK, PYTHON, child_env, free_port, run_to_end, spawn, wait_listening
from bench.cpu import CpuMeter, find_postmaster
from bench.library_receiver import TABLE as LIBRARY_TABLE
from bench.naive_receiver import TABLE as NAIVE_TABLE
from bench.stats import Spread
from bench.table import Row

GOAL_P99_MS = 50.0


class WebhookCheckError(AssertionError):
    """A run whose answers or stored rows are wrong: its figures would mean nothing."""


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    """Timed requests, after the warm-up."""
    warmup: int
    time_limit: float
    """Seconds after which the generator starts no more requests."""
    workers: int = 32
    installations: int = 2_000


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    label: str
    command: Callable[[int, str], list[str]]
    """(port, database URL) -> argv."""
    table: str | None
    """Where each 200 leaves exactly one row; None for a server that stores nothing."""
    goal: float | None = None
    """The tracker's throughput must be at least this multiple of this baseline's."""


EMPTY = Server(
    "empty",
    "empty aiohttp handler",
    lambda port, _: [PYTHON, "-m", "bench.empty_receiver", "--port", str(port)],
    None,
    0.4,
)
NAIVE = Server(
    "naive",
    "naive: 1 INSERT per request",
    lambda port, url: [PYTHON, "-m", "bench.naive_receiver", "--port", str(port), "--database-url", url],
    NAIVE_TABLE,
    1.5,
)
LIBRARY = Server(
    "library",
    "eventsourcing Application.save in a thread",
    lambda port, url: [PYTHON, "-m", "bench.library_receiver", "--port", str(port), "--database-url", url],
    LIBRARY_TABLE,
    5.0,
)
TRACKER = Server(
    "tracker",
    "tracker serve",
    lambda port, _: [PYTHON, "-m", "tracker", "serve", "--host", LOOPBACK, "--port", str(port)],
    "events",
)
INGEST = Server(
    "ingest",
    "tracker serve --projections none --processes 2",
    lambda port, url: [*TRACKER.command(port, url), "--projections", "none", "--processes", "2"],
    "events",
)
SERVERS = (EMPTY, NAIVE, LIBRARY, TRACKER, INGEST)
TRACKERS = {TRACKER: "", INGEST: ", ingest only, 2 processes"}
"""The tracker's two runs, and what their rows' measures add to say which."""


@dataclass(frozen=True, slots=True)
class Run:
    server: str
    load: dict[str, Any]
    """The generator's LoadResult, as it wrote it."""
    server_cpu_s: float
    database_cpu_s: float | None

    def per_notification_us(self, seconds: float | None) -> float | None:
        answered = self.load["ok_total"]
        return None if seconds is None or not answered else seconds / answered * 1e6


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def run_once(
    server: Server, server_url: str, load: Load, *, work_dir: Path, index: int, profile_dir: Path | None
) -> Run:
    """Start `server` on a fresh database, drive it with a generator process, check what it stored.

    With `profile_dir`, py-spy samples the tracker while the generator runs.
    """
    secret = new_secret()
    port = free_port()
    async with database.throwaway_database(server_url) as url:
        env = child_env({"TRACKER_DATABASE_URL": url, "TRACKER_WEBHOOK_SECRET": secret})
        async with spawn(f"{server.name}-{index}", server.command(port, url), env, work_dir) as child:
            await wait_listening(child, port)
            meter = CpuMeter(child.pid, await find_postmaster(url) if server.table else None)
            out = work_dir / f"load-{server.name}-{index}.json"
            generator = _generator(f"http://{LOOPBACK}:{port}/webhooks/ampersand", secret, load, out)
            profiled = profile_dir is not None and server in TRACKERS
            samples = (profile_dir or work_dir) / f"webhook-{server.name}-{index}.txt"
            async with contextlib.AsyncExitStack() as stack:
                if profiled:
                    await stack.enter_async_context(profile.attached(child.pid, samples, work_dir / "py-spy.log"))
                meter.start()
                sender = await stack.enter_async_context(
                    spawn(f"loadgen-{server.name}-{index}", generator, child_env({}), work_dir)
                )
                await run_to_end(sender, load.time_limit + 120)
                server_cpu, database_cpu = meter.stop()
            if profiled:
                samples.with_suffix(".top.txt").write_text(profile.top_frames(samples))
            if child.process.returncode is not None:
                raise child.failure("died during the run")
            result: dict[str, Any] = orjson.loads(out.read_bytes())
            await _check(server, url, result)
    return Run(server.name, result, server_cpu, database_cpu)


def _generator(url: str, secret: str, load: Load, out: Path) -> list[str]:
    options = {
        "--url": url,
        "--secret": secret,
        "--out": str(out),
        "--requests": str(load.requests),
        "--warmup": str(load.warmup),
        "--workers": str(load.workers),
        "--installations": str(load.installations),
        "--time-limit": str(load.time_limit),
    }
    return [PYTHON, "-m", "bench.loadgen", *itertools.chain.from_iterable(options.items())]


async def _check(server: Server, url: str, result: dict[str, Any]) -> None:
    other = {code: n for code, n in result["statuses"].items() if code != "200"}
    if other or result["errors"]:
        msg = f"{server.name}: answers other than 200: {other}, client errors: {result['errors']}"
        raise WebhookCheckError(msg)
    if server.table is None:
        return
    stored = await database.count_rows(url, server.table)
    if stored != result["ok_total"]:
        msg = f"{server.name}: {result['ok_total']} notifications answered 200 but {stored} rows in {server.table}"
        raise WebhookCheckError(msg)


async def measure(server_url: str, load: Load, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    runs = []
    for index in range(repetitions):
        for server in SERVERS:
            run = await run_once(server, server_url, load, work_dir=work_dir, index=index, profile_dir=profile_dir)
            print(
                f"  webhook {server.name:<8} #{index + 1}: {run.load['per_second']:8,.0f}/s"
                f"  p99 {run.load['p99_ms']:6.1f} ms",
                flush=True,
            )
            runs.append(run)
    return runs


def _spread(runs: Sequence[Run], server: Server, value: Callable[[Run], float | None]) -> Spread | None:
    values = [v for run in runs if run.server == server.name and (v := value(run)) is not None]
    return Spread.of(values) if values else None


MEASURES: tuple[tuple[str, Callable[[Run], float | None], int], ...] = (
    ("notifications/s", lambda r: r.load["per_second"], 0),
    ("p50 latency ms", lambda r: r.load["p50_ms"], 1),
    ("p99 latency ms", lambda r: r.load["p99_ms"], 1),
    ("generator CPU/wall %", lambda r: 100 * r.load["cpu_s"] / r.load["wall_s"], 0),
    ("server CPU us/notification", lambda r: r.per_notification_us(r.server_cpu_s), 0),
    ("PostgreSQL CPU us/notification", lambda r: r.per_notification_us(r.database_cpu_s), 0),
)
"""(measure, value of one run, decimals): a row per baseline that has the figure."""


def rows(runs: Sequence[Run]) -> list[Row]:
    """The table rows: each run of the tracker's throughput and latency against the baselines, and where
    the CPU went; the goals are shown for both runs."""
    table = []
    for tracker, which in TRACKERS.items():
        for measure, value, digits in MEASURES:
            ours = _spread(runs, tracker, value)
            for baseline in (NAIVE, LIBRARY, EMPTY):
                theirs = _spread(runs, baseline, value)
                if theirs is None:
                    continue  # the empty handler has no database
                goal, met = _goal(measure, baseline, ours, theirs)
                table.append(Row("webhook", measure + which, ours, baseline.label, theirs, goal, met, digits))
    return table


def _goal(measure: str, baseline: Server, ours: Spread | None, theirs: Spread) -> tuple[str, bool | None]:
    """The webhook's goals: 1.5x the naive receiver, 5x the library, 0.4x the empty handler, p99 under 50 ms."""
    if ours is None:
        return "", None
    if measure == "notifications/s" and baseline.goal is not None:
        return f">= {baseline.goal}x", ours.median >= baseline.goal * theirs.median
    if measure == "p99 latency ms" and baseline is NAIVE:
        return f"tracker < {GOAL_P99_MS:.0f} ms", ours.median < GOAL_P99_MS
    return "", None


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]
