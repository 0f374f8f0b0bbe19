"""Scenario `latency`: how long a notification takes to show in the read API, at a steady 1,000 a second.

`tracker serve --projections inline` (the read models folded in the webhook's process) runs on a fresh
database per repetition; `bench.pacer`, a process of its own, posts signed notifications at a fixed
rate, open loop, and times each from when it was due until every read model has passed its position
(see `bench.pacer` for why a checkpoint probe, and how a sample of reads through `?minPosition=`
checks it). Every answer must be a 200, the log must hold every notification, and every sampled read
must show the notification.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import database, profile
from bench.harness import (
    CheckError,
    check_answers,
    command,
    drive,
    interleaved,
    new_secret,
    per_request_us,
    tracker_serve,
)
from bench.stats import Spread, spread
from bench.table import Row

GOAL_P99_MS = 100.0


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
    secret = new_secret()
    async with database.throwaway_database(server_url) as url:
        serving = tracker_serve(f"latency-serve-{repetition}", url, work_dir, "--projections", "inline", secret=secret)
        async with serving as server:
            out = work_dir / f"latency-{repetition}.json"
            pacer = command(
                "bench.pacer",
                url=server.base,
                secret=secret,
                database_url=url,
                out=out,
                rate=pace.rate,
                seconds=pace.seconds,
                warmup=pace.warmup,
                installations=pace.installations,
                sample_every=pace.sample_every,
                check_every=pace.check_every,
            )
            driven = await drive(
                server,
                f"pacer-{repetition}",
                pacer,
                out,
                work_dir=work_dir,
                timeout=pace.warmup + pace.seconds + 180,
                database_url=url,
                samples=profile.samples_path(profile_dir, f"latency-tracker-{repetition}"),
            )
        stored = await database.count_rows(url, "events")
    _check(driven.result, stored)
    return Run(repetition, driven.result, driven.server_cpu_s, driven.database_cpu_s)


def _check(result: dict[str, Any], stored: int) -> None:
    """Every notification answered 200 and in the log, and every read showed its notification."""
    check_answers("latency", result)
    if stored != result["sent"]:
        msg = f"latency: {result['sent']} notifications answered 200 but {stored} events in the log"
        raise CheckError(msg)
    if result["stale"] or not result["timed"] or not result["checked"]:
        msg = (
            f"latency: {result['stale']} reads did not show their notification; {result['timed']} timed,"
            f" {result['checked']} read back"
        )
        raise CheckError(msg)


async def measure(server_url: str, pace: Pace, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    async def once(pace: Pace, repetition: int) -> Run:
        return await run_once(server_url, pace, work_dir=work_dir, repetition=repetition, profile_dir=profile_dir)

    def report(_: Pace, repetition: int, run: Run) -> str:
        result = run.result
        return (
            f"latency #{repetition}: visible p50 {result['visible_p50_ms']:6.1f} ms"
            f"  p99 {result['visible_p99_ms']:6.1f} ms  (answered p99 {result['answered_p99_ms']:5.1f} ms,"
            f" sent at {result['achieved_rate']:,.0f}/s,"
            f" late by {result['max_send_lag_ms']:.1f} ms at most)"
        )

    return await interleaved(repetitions, (pace,), once, report)


def rows(runs: Sequence[Run], pace: Pace) -> list[Row]:
    def runs_of(value: Callable[[Run], float | None]) -> Spread | None:
        return spread(value(run) for run in runs)

    def per_notification(seconds: float | None, run: Run) -> float | None:
        return per_request_us(seconds, run.result["sent"])

    api = f"the same, read through GET ?minPosition= (1 in {pace.sample_every:,})"
    at = f"at {pace.rate:,.0f}/s for {pace.seconds:,.0f} s"
    visible_p99 = runs_of(lambda r: r.result["visible_p99_ms"])
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
            runs_of(lambda r: r.result["visible_p50_ms"]),
            api,
            runs_of(lambda r: r.result["api_p50_ms"]),
            digits=1,
        ),
        Row(
            "latency",
            f"notification to visible p99 ms, {at}",
            visible_p99,
            api,
            runs_of(lambda r: r.result["api_p99_ms"]),
            f"p99 < {GOAL_P99_MS:.0f} ms",
            met,
            digits=1,
        ),
        *(Row("latency", measure, runs_of(value), "", None, digits=digits) for measure, value, digits in context),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def summary(pace: Pace) -> str:
    return (
        f"latency: {pace.rate:,.0f} notifications/s for {pace.seconds:,.0f} s after {pace.warmup:,.0f} s warm-up,"
        f" {pace.installations:,} installations"
    )
