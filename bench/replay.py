"""The timed part of scenario `rebuild`, in a process of its own so its peak RSS is its own.

    python -m bench.replay rebuild --database-url URL --out FILE   # Tracker.rebuild(): empty, replay, fold
    python -m bench.replay raw --database-url URL --out FILE       # the floor: read the rows, decode the JSON
    python -m bench.replay library --events N --database-url URL --out FILE  # eventsourcing's ProjectionRunner

The first two run on uvloop, as `tracker rebuild` does; the library's runner runs in its own threads.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)
import uvloop

from tracker import Tracker
from tracker.collector import tune_collector
from tracker.store.database import init_connection

PAGE = 5_000
_LIST_EVERY = 0.5
"""Seconds between two listings of the children: a listing reads every process's /proc/PID/stat, which
20 times a second took 8% of a core from the replay it measured."""
_RAW_PAGE = (
    "SELECT position, stream_id, version, type, payload->'data' AS data, received_at"
    " FROM events WHERE position > $1 ORDER BY position LIMIT $2"
)


async def rebuild(url: str) -> dict[str, Any]:
    """Time `Tracker.rebuild()` alone: connecting and migrating happen before the clock starts."""
    async with Tracker(database_url=url, follow_projections=False) as tracker:
        started = time.perf_counter()
        folded = await tracker.rebuild()
        seconds = time.perf_counter() - started
    return {"folded": folded, "seconds": seconds}


async def raw_read(url: str) -> dict[str, Any]:
    """Read every event by position in pages, decoding payload->'data' with orjson, and nothing more."""
    conn = await asyncpg.connect(url)
    try:
        await init_connection(conn)  # the tracker's own jsonb codec: the same decoding cost
        started = time.perf_counter()
        read, position = 0, 0
        while rows := await conn.fetch(_RAW_PAGE, position, PAGE):
            read += len(rows)
            position = rows[-1]["position"]
        seconds = time.perf_counter() - started
    finally:
        await conn.close()
    return {"read": read, "seconds": seconds}


def peak_rss_mb() -> float:
    """This program's peak RSS: VmHWM, which exec resets, where getrusage's ru_maxrss keeps the peak of
    the process that forked it (here the benchmark, with its own much larger heap)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    msg = "no VmHWM in /proc/self/status"
    raise OSError(msg)


class TreeMemory:
    """The peak of this process's RSS and its children's together, sampled in a thread every 50 ms (VmHWM
    is one process's own, and `getrusage` gives the largest child, not the sum)."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, name="tree-memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._sampler.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._sampler.join()

    def _sample(self) -> None:
        me = psutil.Process()
        tree, listed = [me], 0.0
        while not self._stop.wait(0.05):
            if time.monotonic() - listed >= _LIST_EVERY:
                tree, listed = [me, *me.children(recursive=True)], time.monotonic()
            total = 0
            for process in tree:
                with contextlib.suppress(psutil.Error):  # a worker that has just ended
                    total += process.memory_info().rss
            self.peak_mb = max(self.peak_mb, total / 2**20)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("mode", choices=("rebuild", "raw", "library"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--events", type=int, default=20_000, help="library: the slice of the log it replays")
    parser.add_argument("--timeout", type=float, default=600, help="library: seconds it may take")
    args = parser.parse_args()
    tune_collector()  # as the `tracker` command does, for the baselines too
    with TreeMemory() as tree:
        if args.mode == "library":
            # Imported here: psycopg and the library's persistence would swell the other modes' start and RSS.
            from bench import library_projection  # noqa: PLC0415

            result = library_projection.replay(args.database_url, args.events, args.timeout)
        else:
            result = uvloop.run(rebuild(args.database_url) if args.mode == "rebuild" else raw_read(args.database_url))
    # A rebuild's workers hold most of its memory: the figure is theirs and this process's, together.
    own = peak_rss_mb()
    result |= {"own_peak_rss_mb": own, "peak_rss_mb": max(tree.peak_mb, own), "mode": args.mode}
    args.out.write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
