"""Scenario `rebuild`: load genuine tracker events, then time `Tracker.rebuild()` against a raw read.

The events go through the tracker's own parsing, routing and `EventLog.append` (the mapper, the
dedupe keys, the stream versions), in large batches: the rows are exactly what the webhook writes,
without paying HTTP for 200,000 of them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench import database, payloads, profile
from bench.children import PYTHON, child_env, run_to_end, spawn
from bench.stats import Spread
from bench.table import Row
from tracker import Tracker
from tracker.domain import route
from tracker.ingest.parsing import parse_webhook_body
from tracker.ingest.pipeline import Delivery
from tracker.store.event_log import NewEvent

GOAL_PER_SECOND = 30_000
_BATCH = 2_000
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class RebuildCheckError(AssertionError):
    """The rebuild folded a different number of events, or built a different number of views."""


@dataclass(frozen=True, slots=True)
class Log:
    events: int
    installations: int


@dataclass(frozen=True, slots=True)
class Run:
    mode: str
    result: dict[str, Any]

    @property
    def per_second(self) -> float:
        return float(self.result["events"] / self.result["seconds"])


def new_event(notification: dict[str, Any], index: int) -> NewEvent:
    """A webhook delivery as the pipeline would append it, received one second after the previous one."""
    body = orjson.dumps(notification)
    parsed = parse_webhook_body(body)
    stream_id, event_class = route(parsed.notification_type, parsed.data)
    received_at = _EPOCH + timedelta(seconds=index)
    delivery = Delivery("webhook", body, f"svix:msg_{index:08d}", f"msg_{index:08d}", True, received_at)
    return NewEvent(stream_id, event_class, parsed.notification_type, parsed.data, body, delivery.metadata(),
                    delivery.dedupe_key, received_at)


async def load(url: str, log: Log) -> float:
    """Append the events in batches through the tracker's event log; return the seconds it took."""
    started = time.perf_counter()
    async with Tracker(database_url=url, follow_projections=False) as tracker:
        batch: list[NewEvent] = []
        for index, notification in enumerate(payloads.stream(log.events, log.installations, seed=7)):
            batch.append(new_event(notification, index))
            if len(batch) == _BATCH:
                await tracker.log.append(batch)
                batch = []
        if batch:
            await tracker.log.append(batch)
        stored = await tracker.log.count()
    if stored != log.events:
        msg = f"loaded {stored} events, expected {log.events}"
        raise RebuildCheckError(msg)
    return time.perf_counter() - started


async def replay(mode: str, url: str, work_dir: Path, index: int, profile_dir: Path | None) -> Run:
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
    return Run(mode, orjson.loads(out.read_bytes()))


async def measure(url: str, log: Log, repetitions: int, work_dir: Path, profile_dir: Path | None) -> list[Run]:
    seconds = await load(url, log)
    print(f"  rebuild: loaded {log.events:,} events in {seconds:.1f} s", flush=True)
    runs = []
    for index in range(repetitions):
        for mode in ("rebuild", "raw"):
            run = await replay(mode, url, work_dir, index, profile_dir)
            await _check(run, url, log)
            print(f"  rebuild {mode:<7} #{index + 1}: {run.per_second:8,.0f} events/s"
                  f"  peak RSS {run.result['peak_rss_mb']:.0f} MB", flush=True)
            runs.append(run)
    return runs


async def _check(run: Run, url: str, log: Log) -> None:
    if run.result["events"] != log.events:
        msg = f"{run.mode} went through {run.result['events']} events, the log holds {log.events}"
        raise RebuildCheckError(msg)
    if run.mode == "rebuild":
        views = await database.count_rows(url, "installation_view")
        if views != log.installations:
            msg = f"rebuild left {views} installation views for {log.installations} installations"
            raise RebuildCheckError(msg)


def rows(runs: Sequence[Run], log: Log) -> list[Row]:
    def spread(mode: str, key: str) -> Spread:
        return Spread.of([run.per_second if key == "rate" else run.result[key] for run in runs if run.mode == mode])

    ours = spread("rebuild", "rate")
    baseline = f"raw asyncpg read + orjson, pages of {5_000:,}"
    return [
        Row("rebuild", f"events/s over {log.events:,} events", ours, baseline, spread("raw", "rate"),
            f">= {GOAL_PER_SECOND:,}/s", ours.median >= GOAL_PER_SECOND),
        Row("rebuild", "peak RSS MB of the process", spread("rebuild", "peak_rss_mb"), baseline,
            spread("raw", "peak_rss_mb")),
    ]


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]
