"""The timed part of scenario `rebuild`, in a process of its own so its peak RSS is its own.

    python -m bench.replay rebuild --database-url URL --out FILE   # Tracker.rebuild(): empty, replay, fold
    python -m bench.replay raw --database-url URL --out FILE       # the floor: read the rows, decode the JSON

Both run on the default asyncio loop, as `tracker rebuild` does.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from tracker import Tracker
from tracker.store.database import init_connection

PAGE = 5_000
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


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__)
    parser.add_argument("mode", choices=("rebuild", "raw"))
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    work = rebuild(args.database_url) if args.mode == "rebuild" else raw_read(args.database_url)
    result = asyncio.run(work)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    args.out.write_bytes(orjson.dumps({**result, "mode": args.mode, "peak_rss_mb": peak_kib / 1024}))


if __name__ == "__main__":
    main()
