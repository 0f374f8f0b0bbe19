"""Scenario `latency`: how long a notification takes to show in the read API, at a steady 1,000 a second.

`tracker serve --projections inline` (the read models folded in the webhook's process) runs on a fresh
database per repetition; `bench.pacer`, a process of its own, posts signed notifications at a fixed
rate, open loop, and times each from when it was due until every read model has passed its position
(see `bench.pacer` for why a checkpoint probe, and how a sample of reads through `?minPosition=`
checks it). Every answer must be a 200, the log must hold every notification, and every sampled read
must show the notification.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import database, profile
from bench.children import LOOPBACK, PYTHON, child_env, free_port, run_to_end, spawn, wait_listening
from bench.cpu import CpuMeter, find_postmaster
from bench.stats import Spread
from bench.table import Row
from bench.webhook import new_secret

GOAL_P99_MS = 100.0


class LatencyCheckError(AssertionError):
    """A notification refused, lost, never visible, or a sampled read that did not show it."""


@dataclass(frozen=True, slots=True)
class Pace:
    rate: float
    seconds: float
    """Timed seconds, after the warm-up."""
    warmup: float
    installations: int = 2_000
    sample_every: int = 1_000
    """1 in this many is timed through `?minPosition=` too."""
    check_every: int = 50
    """1 in this many is read back once all are visible."""


@dataclass(frozen=True, slots=True)
class Run:
    repetition: int
    result: dict[str, Any]
    """The pacer's PaceResult."""
    server_cpu_s: float
    database_cpu_s: float | None


async def run_once(server_url: str, pace: Pace, *, work_dir: Path, repetition: int, profile_dir: Path | None) -> Run:
    """One paced run on a fresh database; with `profile_dir`, py-spy samples the tracker meanwhile."""
    secret, port = new_secret(), free_port()
    async with database.throwaway_database(server_url) as url:
        command = [PYTHON, "-m", "tracker", "serve", "--host", LOOPBACK, "--port", str(port), "--projections", "inline"]
        env = child_env({"TRACKER_DATABASE_URL": url, "TRACKER_WEBHOOK_SECRET": secret})
        async with spawn(f"latency-serve-{repetition}", command, env, work_dir) as child:
            await wait_listening(child, port)
            out = work_dir / f"latency-{repetition}.json"
            options = {
                "--url": f"http://{LOOPBACK}:{port}",
                "--secret": secret,
                "--database-url": url,
                "--out": str(out),
                "--rate": str(pace.rate),
                "--seconds": str(pace.seconds),
                "--warmup": str(pace.warmup),
                "--installations": str(pace.installations),
                "--sample-every": str(pace.sample_every),
                "--check-every": str(pace.check_every),
            }
            pacer = [PYTHON, "-m", "bench.pacer", *itertools.chain.from_iterable(options.items())]
            meter = CpuMeter(child.pid, await find_postmaster(url))
            samples = (profile_dir or work_dir) / f"latency-tracker-{repetition}.txt"
            async with contextlib.AsyncExitStack() as stack:
                if profile_dir is not None:
                    await stack.enter_async_context(profile.attached(child.pid, samples, work_dir / "py-spy.log"))
                meter.start()
                async with spawn(f"pacer-{repetition}", pacer, child_env({}), work_dir) as sender:
                    await run_to_end(sender, pace.warmup + pace.seconds + 180)
                server_cpu, database_cpu = meter.stop()
            if profile_dir is not None:
                samples.with_suffix(".top.txt").write_text(profile.top_frames(samples))
            if child.process.returncode is not None:
                raise child.failure("died during the run")
        result: dict[str, Any] = orjson.loads(out.read_bytes())
        stored = await database.count_rows(url, "events")
    _check(result, stored)
    return Run(repetition, result, server_cpu, database_cpu)


def _check(result: dict[str, Any], stored: int) -> None:
    other = {code: n for code, n in result["statuses"].items() if code != "200"}
    if other or result["errors"]:
        msg = f"latency: answers other than 200: {other}, errors: {result['errors']}"
        raise LatencyCheckError(msg)
    if stored != result["sent"]:
        msg = f"latency: {result['sent']} notifications answered 200 but {stored} events in the log"
        raise LatencyCheckError(msg)
    if result["stale"] or not result["timed"] or not result["checked"]:
        msg = (
            f"latency: {result['stale']} reads did not show their notification; {result['timed']} timed,"
            f" {result['checked']} read back"
        )
        raise LatencyCheckError(msg)


async def measure(server_url: str, pace: Pace, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    runs = []
    for repetition in range(1, repetitions + 1):
        run = await run_once(server_url, pace, work_dir=work_dir, repetition=repetition, profile_dir=profile_dir)
        result = run.result
        print(
            f"  latency #{repetition}: visible p50 {result['visible_p50_ms']:6.1f} ms"
            f"  p99 {result['visible_p99_ms']:6.1f} ms  (answered p99 {result['answered_p99_ms']:5.1f} ms,"
            f" sent at {result['achieved_rate']:,.0f}/s,"
            f" late by {result['max_send_lag_ms']:.1f} ms at most)",
            flush=True,
        )
        runs.append(run)
    return runs


def rows(runs: Sequence[Run], pace: Pace) -> list[Row]:
    def spread(value: Callable[[Run], float | None]) -> Spread | None:
        values = [v for run in runs if (v := value(run)) is not None]
        return Spread.of(values) if values else None

    def per_notification(seconds: float | None, run: Run) -> float | None:
        return None if seconds is None else seconds / run.result["sent"] * 1e6

    api = f"the same, read through GET ?minPosition= (1 in {pace.sample_every:,})"
    at = f"at {pace.rate:,.0f}/s for {pace.seconds:,.0f} s"
    visible_p99 = spread(lambda r: r.result["visible_p99_ms"])
    met = None if visible_p99 is None else visible_p99.median < GOAL_P99_MS
    context: tuple[tuple[str, Callable[[Run], float | None], int], ...] = (
        ("webhook answered p99 ms (same run)", lambda r: r.result["answered_p99_ms"], 1),
        ("sent notifications/s (paced)", lambda r: r.result["achieved_rate"], 0),
        ("sender late at most, ms", lambda r: r.result["max_send_lag_ms"], 1),
        ("generator CPU/wall % (sender + probe)", lambda r: 100 * r.result["cpu_s"] / r.result["wall_s"], 0),
        ("server CPU us/notification", lambda r: per_notification(r.server_cpu_s, r), 0),
        ("PostgreSQL CPU us/notification (with the probe)", lambda r: per_notification(r.database_cpu_s, r), 0),
    )
    return [
        Row(
            "latency",
            f"notification to visible p50 ms, {at}",
            spread(lambda r: r.result["visible_p50_ms"]),
            api,
            spread(lambda r: r.result["api_p50_ms"]),
            digits=1,
        ),
        Row(
            "latency",
            f"notification to visible p99 ms, {at}",
            visible_p99,
            api,
            spread(lambda r: r.result["api_p99_ms"]),
            f"p99 < {GOAL_P99_MS:.0f} ms",
            met,
            digits=1,
        ),
        *(Row("latency", measure, spread(value), "", None, digits=digits) for measure, value, digits in context),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def summary(pace: Pace) -> str:
    return (
        f"latency: {pace.rate:,.0f} notifications/s for {pace.seconds:,.0f} s after {pace.warmup:,.0f} s warm-up,"
        f" {pace.installations:,} installations"
    )
