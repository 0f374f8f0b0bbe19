"""Scenario `rebuild`: load genuine tracker events, then time `Tracker.rebuild()` against a raw read.

The events go in through the embedding API, `Tracker.ingest`, many at a time so the group commit
writes them in large transactions: parsing, routing, the mapper, dedupe keys and stream versions
are the tracker's own, so the rows are what the webhook writes, without paying HTTP for each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from bench import database, payloads, profile
from bench.children import PYTHON, child_env, run_to_end, spawn
from bench.stats import Spread
from bench.table import Row
from bench.webhook import new_secret
from tracker import Tracker
from tracker.settings import Settings

GOAL_PER_SECOND = 30_000
_WINDOW = 2_000
"""Notifications in flight at once while loading: enough for full group commits, well under max_pending."""


class RebuildCheckError(AssertionError):
    """The load, the rebuild or the raw read did not go through every event, or views are missing."""


@dataclass(frozen=True, slots=True)
class Log:
    events: int
    installations: int


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    events: int
    """Events in the log: the rate is over all of them, whatever each read model folds."""
    result: dict[str, Any]

    @property
    def per_second(self) -> float:
        return float(self.events / self.result["seconds"])


def embedded_tracker(url: str) -> Tracker:
    """A tracker on `url` that folds nothing by itself; from defaults, whatever TRACKER_* says here."""
    # A secret, though no webhook is served: without one the tracker warns that signatures go unchecked.
    return Tracker(Settings(database_url=url, webhook_secrets=(new_secret(),)), follow_projections=False)


async def load(url: str, log: Log) -> float:
    """Ingest the events, `_WINDOW` at a time, in stream order; return the seconds it took."""
    started = time.perf_counter()
    async with embedded_tracker(url) as tracker:
        window: list[Awaitable[object]] = []
        for index, notification in enumerate(payloads.stream(log.events, log.installations, seed=7)):
            window.append(tracker.ingest(notification, delivery_id=f"msg_{index:08d}"))
            if len(window) == _WINDOW:
                await asyncio.gather(*window)
                window = []
        await asyncio.gather(*window)
    stored = await database.count_rows(url, "events")
    if stored != log.events:
        msg = f"loaded {stored} events, expected {log.events}"
        raise RebuildCheckError(msg)
    return time.perf_counter() - started


async def replay(mode: str, url: str, log: Log, *, work_dir: Path, index: int, profile_dir: Path | None) -> Run:
    """Time one replay in a child process; with `profile_dir`, the tracker's rebuild runs under py-spy."""
    out = work_dir / f"replay-{mode}-{index}.json"
    args = [PYTHON, "-m", "bench.replay", mode, "--database-url", url, "--out", str(out)]
    samples = (profile_dir or work_dir) / f"rebuild-{index}.txt"
    profiled = profile_dir is not None and mode == "rebuild"
    if profiled:
        args = [*profile.record_command(samples), "--", *args]
    async with spawn(f"replay-{mode}-{index}", args, child_env({}), work_dir) as child:
        await run_to_end(child, 600)
    if profiled:
        samples.with_suffix(".top.txt").write_text(profile.top_frames(samples))
    return Run(mode, log.events, orjson.loads(out.read_bytes()))


async def measure(url: str, log: Log, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    seconds = await load(url, log)
    print(f"  rebuild: loaded {log.events:,} events in {seconds:.1f} s", flush=True)
    runs = []
    for index in range(repetitions):
        for mode in ("rebuild", "raw"):
            run = await replay(mode, url, log, work_dir=work_dir, index=index, profile_dir=profile_dir)
            await _check(run, url, log)
            print(
                f"  rebuild {mode:<7} #{index + 1}: {run.per_second:8,.0f} events/s"
                f"  peak RSS {run.result['peak_rss_mb']:.0f} MB",
                flush=True,
            )
            runs.append(run)
    return runs


async def _check(run: Run, url: str, log: Log) -> None:
    result = run.result
    if run.mode == "raw" and result["read"] != log.events:
        msg = f"the raw read returned {result['read']} rows, the log holds {log.events}"
        raise RebuildCheckError(msg)
    if run.mode == "rebuild":
        if sum(result["folded"].values()) < log.events:  # every type in the mix has a read model
            msg = f"rebuild folded {result['folded']}, fewer than the {log.events} events in the log"
            raise RebuildCheckError(msg)
        await _check_views(url, log)


async def _check_views(url: str, log: Log) -> None:
    """Read a few installations back through the embedding API: a rebuild must have produced them."""
    async with embedded_tracker(url) as tracker:
        for number in (0, log.installations // 2, log.installations - 1):
            installation_id = payloads.installation_id(number)
            view = await tracker.installation(installation_id)
            if view is None or view.get("installationId") != installation_id:
                msg = f"after the rebuild, installation {installation_id} reads {view!r}"
                raise RebuildCheckError(msg)


def rows(runs: Sequence[Run], log: Log) -> list[Row]:
    def spread(mode: str, key: str) -> Spread:
        return Spread.of([run.per_second if key == "rate" else run.result[key] for run in runs if run.mode == mode])

    ours = spread("rebuild", "rate")
    baseline = f"raw asyncpg read + orjson, pages of {5_000:,}"
    return [
        Row(
            "rebuild",
            f"events/s over {log.events:,} events",
            ours,
            baseline,
            spread("raw", "rate"),
            f">= {GOAL_PER_SECOND:,}/s",
            ours.median >= GOAL_PER_SECOND,
        ),
        Row(
            "rebuild",
            "peak RSS MB of the process",
            spread("rebuild", "peak_rss_mb"),
            baseline,
            spread("raw", "peak_rss_mb"),
        ),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]
