"""Scenario `rebuild`: load genuine tracker events, then time `Tracker.rebuild()` against two baselines.

The log is written by `bench.bulk_log`: rows built by the tracker's own parser, pipeline and mapper,
COPYed in, so they are what the webhook writes without paying a request for each. The baselines:
a raw read and decode of the same rows (the floor), and eventsourcing's `ProjectionRunner` folding a
slice of the log with the same read models (`bench.library_projection`); all three are timed in child
processes, so each peak RSS is that replay's own (with the rebuild's worker processes, summed).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import bulk_log, payloads, profile
from bench.harness import CheckError, command, embedded_tracker, interleaved, migrate, run_timed
from bench.stats import Spread
from bench.table import Row

GOAL_VS_RAW = 0.4
GOAL_VS_LIBRARY = 40.0
GOAL_RSS_MB = 300.0
RSS_MEASURE = "peak RSS MB, the process and its workers"
MODES = ("rebuild", "raw", "library")
_REPLAY_TIMEOUT = 1_800.0


@dataclass(frozen=True, slots=True)
class Log:
    events: int
    installations: int
    library_events: int = 20_000
    """The slice the library's runner replays: at about a thousand events a second, not the whole log."""


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    events: int
    """Events replayed (the log, or the library's slice): the rate is over all of them, whatever each
    read model folds."""
    result: dict[str, Any]

    @property
    def per_second(self) -> float:
        return float(self.events / self.result["seconds"])


async def load(url: str, log: Log) -> float:
    """Migrate the empty database, COPY the log in; return the seconds it took."""
    started = time.perf_counter()
    await migrate(url)
    await bulk_log.load(url, log.events, log.installations)
    return time.perf_counter() - started


async def replay(mode: str, url: str, log: Log, *, work_dir: Path, repetition: int, profile_dir: Path | None) -> Run:
    """Time one replay in a child process; with `profile_dir`, the tracker's rebuild runs under py-spy."""
    name = f"replay-{mode}-{repetition}"
    out = work_dir / f"{name}.json"
    events = log.events
    options: dict[str, float] = {}
    if mode == "library":
        events = min(log.library_events, log.events)
        options = {"events": events, "timeout": _REPLAY_TIMEOUT}
    argv = command("bench.replay", mode, database_url=url, out=out, **options)
    samples = profile.samples_path(profile_dir, f"rebuild-{repetition}") if mode == "rebuild" else None
    result = await run_timed(name, argv, out, work_dir=work_dir, timeout=_REPLAY_TIMEOUT + 60, samples=samples)
    return Run(mode, events, result)


async def measure(url: str, log: Log, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    seconds = await load(url, log)
    print(f"  rebuild: loaded {log.events:,} events in {seconds:.1f} s", flush=True)

    async def once(mode: str, repetition: int) -> Run:
        run = await replay(mode, url, log, work_dir=work_dir, repetition=repetition, profile_dir=profile_dir)
        await _check(run, url, log)
        return run

    def report(mode: str, repetition: int, run: Run) -> str:
        return (
            f"rebuild {mode:<7} #{repetition}: {run.per_second:8,.0f} events/s over {run.events:,}"
            f"  peak RSS {run.result['peak_rss_mb']:.0f} MB"
        )

    return await interleaved(repetitions, MODES, once, report)


async def _check(run: Run, url: str, log: Log) -> None:
    result = run.result
    if run.mode in ("raw", "library") and result["read"] != run.events:
        msg = f"the {run.mode} replay went through {result['read']} events, expected {run.events}"
        raise CheckError(msg)
    if run.mode == "rebuild":
        if sum(result["folded"].values()) < log.events:  # every type in the mix has a read model
            msg = f"rebuild folded {result['folded']}, fewer than the {log.events} events in the log"
            raise CheckError(msg)
        await _check_views(url, log)


async def _check_views(url: str, log: Log) -> None:
    """Read a few installations back through the embedding API: a rebuild must have produced them."""
    async with embedded_tracker(url) as tracker:
        for number in (0, log.installations // 2, log.installations - 1):
            installation_id = payloads.installation_id(number)
            view = await tracker.installation(installation_id)
            if view is None or view.get("installationId") != installation_id:
                msg = f"after the rebuild, installation {installation_id} reads {view!r}"
                raise CheckError(msg)


def rows(runs: Sequence[Run], log: Log) -> list[Row]:
    def spread(mode: str, key: str) -> Spread:
        return Spread.of([run.per_second if key == "rate" else run.result[key] for run in runs if run.mode == mode])

    ours, raw, library = spread("rebuild", "rate"), spread("raw", "rate"), spread("library", "rate")
    rss = spread("rebuild", "peak_rss_mb")
    raw_label = f"raw asyncpg read + orjson, pages of {5_000:,}"
    library_label = f"eventsourcing ProjectionRunner, first {min(log.library_events, log.events):,} events"
    measure = f"events/s, {log.events:,} events / {log.installations:,} installations"
    return [
        Row("rebuild", measure, ours, raw_label, raw, f">= {GOAL_VS_RAW}x", ours.median >= GOAL_VS_RAW * raw.median),
        Row(
            "rebuild",
            measure,
            ours,
            library_label,
            library,
            f">= {GOAL_VS_LIBRARY:.0f}x",
            ours.median >= GOAL_VS_LIBRARY * library.median,
        ),
        Row(
            "rebuild",
            RSS_MEASURE,
            rss,
            raw_label,
            spread("raw", "peak_rss_mb"),
            f"tracker < {GOAL_RSS_MB:.0f} MB",
            rss.median < GOAL_RSS_MB,
        ),
        Row("rebuild", RSS_MEASURE, rss, library_label, spread("library", "peak_rss_mb")),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]
