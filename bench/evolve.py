"""Micro-benchmark of the read models' pure part: `evolve` over a realistic log, then `to_json` of each view.

    python -m bench.evolve [--events N] [--installations N] [--repetitions N]

No database: the events are built in memory from the rebuild scenario's notification mix, routed and
numbered as the log would (stream versions, positions, one received-at per event), and each read model
folds them as a rebuild does, stream by stream. Prints µs per event folded for each read model, and µs
per view encoded (a rebuild encodes each view once, so also per event folded), in CPU time; the figures
are medians of the repetitions, with their range.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson

from bench import payloads
from bench.stats import Spread
from projections import READ_MODELS, ReadModel
from tracker.domain.recorded import Recorded
from tracker.domain.routing import route

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def recorded_log(events: int, installations: int, seed: int = 7) -> list[Recorded]:
    """The bench log as a rebuild reads it: by stream, then version, each `data` decoded from JSON in turn.

    Decoded in that order, as the rebuild's pages are, so that a stream's events sit together in memory.
    """
    versions: defaultdict[str, int] = defaultdict(int)
    rows = []
    for position, notification in enumerate(payloads.stream(events, installations, seed), start=1):
        kind, data = notification["notificationType"], notification["data"]
        stream_id, _ = route(kind, data)
        versions[stream_id] += 1
        rows.append((position, stream_id, versions[stream_id], kind, orjson.dumps(data)))
    rows.sort(key=lambda row: (row[1], row[2]))
    return [
        Recorded(position, stream_id, version, kind, orjson.loads(data), _EPOCH + timedelta(milliseconds=position))
        for position, stream_id, version, kind, data in rows
    ]


def streams_of(model: ReadModel[Any], log: list[Recorded]) -> list[list[Recorded]]:
    """The model's events by entity, each in version order: what a rebuild folds, stream after stream."""
    by_key: defaultdict[str, list[Recorded]] = defaultdict(list)
    for event in log:
        if event.type in model.types:
            by_key[model.key_of(event)].append(event)
    return list(by_key.values())


def fold(model: ReadModel[Any], streams: list[list[Recorded]]) -> list[Any]:
    views = []
    evolve = model.evolve
    for stream in streams:
        view = None
        for event in stream:
            view = evolve(view, event)
        if view is not None:
            views.append(view)
    return views


def encode(model: ReadModel[Any], views: list[Any]) -> list[bytes]:
    return [model.to_json(view) for view in views]


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """CPU seconds `work` took, the collector's share included (a rebuild pays it too).

    CPU time rather than wall time: on a shared machine, the time other processes hold the core is not ours.
    What exists before `work` starts is frozen out of the collector's reach, so that neither the log nor
    an earlier run's views make the collections of this one longer.
    """
    gc.collect()
    gc.freeze()
    try:
        started = time.process_time()
        result = work()
        return time.process_time() - started, result
    finally:
        gc.unfreeze()


@dataclass(frozen=True, slots=True)
class Figures:
    model: str
    events: int
    views: int
    evolve_us: Spread
    """Per event folded."""
    to_json_us: Spread
    """Per view encoded."""


def measure(model: ReadModel[Any], log: list[Recorded], repetitions: int) -> Figures:
    streams = streams_of(model, log)
    events = sum(len(stream) for stream in streams)
    evolve_us, to_json_us = [], []
    for _ in range(repetitions):
        seconds, views = timed(partial(fold, model, streams))
        evolve_us.append(1e6 * seconds / events)
        seconds, _ = timed(partial(encode, model, views))
        to_json_us.append(1e6 * seconds / len(views))
    return Figures(model.name, events, len(views), Spread.of(evolve_us), Spread.of(to_json_us))


def _spread(spread: Spread) -> str:
    return f"{spread.median:7.2f} ({spread.low:.2f}-{spread.high:.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.evolve", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--installations", type=int, default=5_000)
    parser.add_argument("--repetitions", type=int, default=5)
    args = parser.parse_args()
    log = recorded_log(args.events, args.installations)
    print(f"{len(log):,} events over {args.installations:,} installations; medians (min-max) of {args.repetitions}")
    print(f"{'read model':<14}{'events':>8}{'views':>8}  {'evolve µs/event':<24}{'to_json µs/view':<24}per event")
    evolving = encoding = 0.0
    for model in READ_MODELS:
        figures = measure(model, log, args.repetitions)
        evolving += figures.evolve_us.median * figures.events
        encoding += figures.to_json_us.median * figures.views
        print(
            f"{figures.model:<14}{figures.events:>8,}{figures.views:>8,}  {_spread(figures.evolve_us):<24}"
            f"{_spread(figures.to_json_us):<24}{figures.to_json_us.median * figures.views / figures.events:5.2f}"
        )
    per_event = evolving / len(log)
    print(f"all read models, per event of the log: evolve {per_event:.2f} µs ({1e6 / per_event:,.0f}/s),"
          f" to_json {encoding / len(log):.2f} µs")  # fmt: skip


if __name__ == "__main__":
    main()
