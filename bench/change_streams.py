"""Scenario `streams`: the webhook's throughput and p99 with idle change-feed streams open, against none.

`tracker serve` (projections folded in its child, as by default) runs on a fresh database per run; with
`clients`, `bench.idle_streams` holds that many `GET /v1/changes` streams open on it before the load starts,
half with a token limited to one project and half with a token limited to two, none of which receives
anything (an unlimited token is not idle while webhooks arrive: it is sent every change). Then
`bench.loadgen` sends the webhook load, as in the webhook scenario. What the streams may cost is the
feed's shared read (once per commit, however many follow) and their keep-alives.

Every answer must be a 200 and stored, every stream must open, none may receive a change, and one more
stream than the cap (set to `clients`) must be refused with a 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import database, webhook
from bench.children import Child, child_env, spawn
from bench.harness import CheckError, Load, command, drive, interleaved, new_secret, per_request_us, tracker_serve
from bench.open_files import raise_open_files_limit
from bench.stats import Spread, spread
from bench.table import Row

GOAL_RATIO = 0.9
"""Throughput with the streams open, as a share of the throughput without."""
GOAL_P99_MS = 50.0
IDLE_PROJECTS = ("proj-idle-a", "proj-idle-b", "proj-idle-c")
"""Projects no notification of the load names (`bench.payloads` uses proj-0 to proj-6)."""
_DESCRIPTORS_BESIDES = 1_024
"""File descriptors the bench's processes need besides one per stream at each end."""


@dataclass(frozen=True, slots=True)
class Streams:
    clients: int
    load: Load
    """The webhook load each run sends."""


@dataclass(frozen=True, slots=True)
class Run:
    clients: int
    load: dict[str, Any]
    """The generator's LoadResult, as it wrote it."""
    held: dict[str, Any] | None
    """What `bench.idle_streams` saw; None without streams."""
    server_cpu_s: float
    database_cpu_s: float | None

    def per_notification_us(self, seconds: float | None) -> float | None:
        return per_request_us(seconds, self.load["ok_total"])


def summary(streams: Streams) -> str:
    return f"streams: {streams.load.requests:,} webhook requests with 0 and {streams.clients:,} idle change streams"


def _enough_descriptors(clients: int) -> None:
    """Raise this process's soft limit of open files (its children inherit it): each stream is a socket in
    the holder and another in the tracker, and a common soft limit is 1,024."""
    wanted = 2 * clients + _DESCRIPTORS_BESIDES
    if (hard := raise_open_files_limit(wanted)) is not None:
        msg = f"{clients:,} streams need {wanted:,} open files; the hard limit is {hard:,} (ulimit -Hn)"
        raise CheckError(msg)


async def run_once(server_url: str, streams: Streams, clients: int, *, work_dir: Path, repetition: int) -> Run:
    """`tracker serve` on a fresh database, `clients` idle streams on it, then the webhook load."""
    secret = new_secret()
    tokens = [secrets.token_hex(16), secrets.token_hex(16)]
    scoped = f"{tokens[0]}={IDLE_PROJECTS[0]} {tokens[1]}={','.join(IDLE_PROJECTS[1:])}"
    name = f"streams-{clients}-{repetition}"
    async with database.throwaway_database(server_url) as url:
        settings = {
            "TRACKER_API_TOKEN": secrets.token_hex(16),
            "TRACKER_API_TOKENS": scoped,
            "TRACKER_MAX_CHANGE_STREAMS": str(max(clients, 1)),
        }
        async with tracker_serve(name, url, work_dir, secret=secret, **settings) as tracker:
            async with contextlib.AsyncExitStack() as stack:
                if clients:
                    holder_args = _holder(f"{tracker.base}/v1/changes", tokens, clients, work_dir / name)
                    holder = await stack.enter_async_context(
                        spawn(f"{name}-holder", holder_args, child_env({}), work_dir)
                    )
                    await _wait_ready(holder, work_dir / f"{name}.ready", timeout=60 + clients / 20)
                out = work_dir / f"{name}-load.json"
                driven = await drive(
                    tracker,
                    f"{name}-loadgen",
                    streams.load.command(tracker.webhook, secret, out),
                    out,
                    work_dir=work_dir,
                    timeout=streams.load.time_limit + 120,
                    database_url=url,
                )
            if clients and holder.process.returncode != 0:  # SIGTERMed on leaving: it writes what it saw, exits 0
                raise holder.failure(f"exited with {holder.process.returncode}")
            tracker.check_alive()
            await webhook.check_stored(webhook.TRACKER, url, driven.result)
    held = orjson.loads((work_dir / f"{name}.held.json").read_bytes()) if clients else None
    _check_held(clients, held)
    return Run(clients, driven.result, held, driven.server_cpu_s, driven.database_cpu_s)


def _holder(url: str, tokens: list[str], clients: int, prefix: Path) -> list[str]:
    """The holder's command line: its files are `prefix` and a suffix."""
    return command(
        "bench.idle_streams",
        url=url,
        tokens=",".join(tokens),
        streams=clients,
        ready=f"{prefix}.ready",
        out=f"{prefix}.held.json",
    )


async def _wait_ready(holder: Child, ready: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(ready.exists):
        if holder.process.returncode is not None:
            raise holder.failure(f"exited with {holder.process.returncode} before its streams were open")
        if time.monotonic() > deadline:
            raise holder.failure(f"did not open its streams within {timeout:.0f} s")
        await asyncio.sleep(0.1)


def _check_held(clients: int, held: dict[str, Any] | None) -> None:
    if held is None:
        return
    problems = []
    if held["opened"] != clients:
        problems.append(f"{held['opened']} of {clients} streams opened (statuses {held['statuses']})")
    if held["changes"]:
        problems.append(f"{held['changes']} changes reached streams of projects that receive nothing")
    if held["ended_early"]:
        problems.append(f"{held['ended_early']} streams ended before the stop")
    if held["beyond_cap"] != 503 or not held["beyond_cap_retry_after"]:
        problems.append(f"a stream past the cap got {held['beyond_cap']}, Retry-After {held['beyond_cap_retry_after']}")
    if problems:
        raise CheckError("; ".join(problems))


async def measure(server_url: str, streams: Streams, repetitions: int, work_dir: Path) -> list[Run]:
    _enough_descriptors(streams.clients)
    without: dict[int, Run] = {}  # each repetition's run without streams, for the ratio after the one with them

    async def once(clients: int, repetition: int) -> Run:
        return await run_once(server_url, streams, clients, work_dir=work_dir, repetition=repetition)

    def report(clients: int, repetition: int, run: Run) -> str:
        load = run.load
        opened = f", streams opened in {run.held['open_s']:.1f} s" if run.held else ""
        line = (
            f"streams {clients:>5,} idle #{repetition}: {load['per_second']:8,.0f}/s  p99 {load['p99_ms']:6.1f} ms"
            f"  generator CPU {load['cpu_s']:.1f} s of {load['wall_s']:.1f} s{opened}"
        )
        if not clients:
            without[repetition] = run
            return line
        return (
            f"{line}\n  streams #{repetition}: {load['per_second'] / without[repetition].load['per_second']:.2f}x the"
            f" throughput without them (goal >= {GOAL_RATIO}x), p99 {load['p99_ms']:.1f} ms"
            f" (goal < {GOAL_P99_MS:.0f} ms)"
        )

    return await interleaved(repetitions, (0, streams.clients), once, report)


MEASURES: tuple[tuple[str, Callable[[Run], float | None], int], ...] = (
    ("notifications/s", lambda r: r.load["per_second"], 0),
    ("p99 latency ms", lambda r: r.load["p99_ms"], 1),
    ("generator CPU/wall %", lambda r: 100 * r.load["cpu_s"] / r.load["wall_s"], 0),
    ("server CPU us/notification", lambda r: r.per_notification_us(r.server_cpu_s), 0),
    ("PostgreSQL CPU us/notification", lambda r: r.per_notification_us(r.database_cpu_s), 0),
)
"""(measure, value of one run, decimals)."""


def _spread(runs: Sequence[Run], clients: int, value: Callable[[Run], float | None]) -> Spread | None:
    return spread(value(run) for run in runs if run.clients == clients)


def rows(runs: Sequence[Run], streams: Streams) -> list[Row]:
    """Each measure with the streams open beside the same without them; the goals on throughput and p99."""
    table = []
    for measure, value, digits in MEASURES:
        ours, theirs = _spread(runs, streams.clients, value), _spread(runs, 0, value)
        goal, met = "", None
        if ours is not None and theirs is not None and measure == "notifications/s":
            goal, met = f">= {GOAL_RATIO}x", ours.median >= GOAL_RATIO * theirs.median
        if ours is not None and measure == "p99 latency ms":
            goal, met = f"< {GOAL_P99_MS:.0f} ms", ours.median < GOAL_P99_MS
        label = f"{measure}, {streams.clients:,} idle change streams"
        table.append(Row("streams", label, ours, "no change streams", theirs, goal, met, digits))
    return table


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]
