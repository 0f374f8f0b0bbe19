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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import database, profile
from bench.harness import (
    CheckError,
    Load,
    check_answers,
    command,
    drive,
    interleaved,
    listening,
    new_secret,
    per_request_us,
    serve_command,
    tracker_env,
)
from bench.library_receiver import TABLE as LIBRARY_TABLE
from bench.naive_receiver import TABLE as NAIVE_TABLE
from bench.stats import Spread, spread
from bench.table import Row

GOAL_P99_MS = 50.0


@dataclass(frozen=True, slots=True)
class Server:
    name: str
    label: str
    table: str | None
    """Where each 200 leaves exactly one row; None for a server that stores nothing."""
    goal: float | None = None
    """The tracker's throughput must be at least this multiple of this baseline's."""
    receiver: str | None = None
    """A baseline's module, run as `python -m MODULE --port P [--database-url URL]`; None: `tracker serve`."""
    options: tuple[str, ...] = ()
    """`tracker serve`'s options besides its host and port."""

    def command(self, port: int, url: str) -> list[str]:
        if self.receiver is None:
            return serve_command(port, *self.options)
        return command(self.receiver, port=port, **({"database_url": url} if self.table else {}))


EMPTY = Server("empty", "empty aiohttp handler", None, 0.4, receiver="bench.empty_receiver")
NAIVE = Server("naive", "naive: 1 INSERT per request", NAIVE_TABLE, 1.5, receiver="bench.naive_receiver")
LIBRARY = Server(
    "library", "eventsourcing Application.save in a thread", LIBRARY_TABLE, 5.0, receiver="bench.library_receiver"
)
TRACKER = Server("tracker", "tracker serve", "events")
INGEST = Server(
    "ingest",
    "tracker serve --projections none --processes 2",
    "events",
    options=("--projections", "none", "--processes", "2"),
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
        return per_request_us(seconds, self.load["ok_total"])


async def run_once(
    server: Server, server_url: str, load: Load, *, work_dir: Path, repetition: int, profile_dir: Path | None
) -> Run:
    """Start `server` on a fresh database, drive it with a generator process, check what it stored.

    With `profile_dir`, py-spy samples the tracker while the generator runs.
    """
    secret, name = new_secret(), f"{server.name}-{repetition}"
    async with database.throwaway_database(server_url) as url:
        env = tracker_env(url, secret)
        async with listening(name, lambda port: server.command(port, url), env, work_dir) as serving:
            out = work_dir / f"load-{name}.json"
            driven = await drive(
                serving,
                f"loadgen-{name}",
                load.command(serving.webhook, secret, out),
                out,
                work_dir=work_dir,
                timeout=load.time_limit + 120,
                database_url=url if server.table else None,
                samples=profile.samples_path(profile_dir, f"webhook-{name}") if server in TRACKERS else None,
            )
            await check_stored(server, url, driven.result)
    return Run(server.name, driven.result, driven.server_cpu_s, driven.database_cpu_s)


async def check_stored(server: Server, url: str, result: dict[str, Any]) -> None:
    """Every request answered 200, and each 200 left one row in the server's table."""
    check_answers(server.name, result)
    if server.table is None:
        return
    stored = await database.count_rows(url, server.table)
    if stored != result["ok_total"]:
        msg = f"{server.name}: {result['ok_total']} notifications answered 200 but {stored} rows in {server.table}"
        raise CheckError(msg)


async def measure(server_url: str, load: Load, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    async def once(server: Server, repetition: int) -> Run:
        return await run_once(
            server, server_url, load, work_dir=work_dir, repetition=repetition, profile_dir=profile_dir
        )

    def report(server: Server, repetition: int, run: Run) -> str:
        sent = run.load
        return f"webhook {server.name:<8} #{repetition}: {sent['per_second']:8,.0f}/s  p99 {sent['p99_ms']:6.1f} ms"

    return await interleaved(repetitions, SERVERS, once, report)


def _spread(runs: Sequence[Run], server: Server, value: Callable[[Run], float | None]) -> Spread | None:
    return spread(value(run) for run in runs if run.server == server.name)


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
