"""Idle change-feed clients, a process of their own: hold N `GET /v1/changes` streams open until told to stop.

Each stream's token is limited to projects that receive nothing, so a stream gets its opening `id:` and
keep-alives only; a change received is counted, and fails the scenario. Once every stream is open, one
more is asked for: the tracker's cap must refuse it (503 with Retry-After). Then the `--ready` file is
written, and the streams are held until SIGTERM (or the time limit), when `--out` is written.

    python -m bench.idle_streams --url http://127.0.0.1:PORT/v1/changes --tokens T1,T2 --streams 1000 \\
        --ready FILE --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp
import orjson
import uvloop

from tracker.wake import woken

_OPENING_AT_ONCE = 50
"""Streams asked for concurrently: enough to open a thousand in a second or two, not a burst of SYNs."""


@dataclass(slots=True)
class Held:
    """What the streams saw, written to `--out` when they are let go."""

    opened: int = 0
    statuses: dict[str, int] | None = None
    beyond_cap: int | None = None
    """The status of the one stream asked for past the cap."""
    beyond_cap_retry_after: str | None = None
    changes: int = 0
    """`data:` events received: none is expected."""
    ended_early: int = 0
    """Streams the server ended before the stop."""
    open_s: float = 0.0
    cpu_s: float = 0.0
    """This process's CPU while it held the streams (after they opened)."""


async def _hold(response: aiohttp.ClientResponse, held: Held, stop: asyncio.Event) -> None:
    while line := await response.content.readline():
        if line.startswith(b"data:"):
            held.changes += 1
    if not stop.is_set():
        held.ended_early += 1


async def _open(
    session: aiohttp.ClientSession, url: str, token: str, statuses: Counter[int]
) -> aiohttp.ClientResponse | None:
    response = await session.get(url, headers={"Authorization": f"Bearer {token}"})
    statuses[response.status] += 1
    if response.status != 200:
        response.release()
        return None
    await response.content.readline()  # the opening `retry:` line: the stream is served
    return response


async def run(args: argparse.Namespace) -> Held:
    held = Held()
    tokens = args.tokens.split(",")
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        gate = asyncio.Semaphore(_OPENING_AT_ONCE)

        async def open_one(index: int) -> aiohttp.ClientResponse | None:
            async with gate:
                return await _open(session, args.url, tokens[index % len(tokens)], statuses)

        opened = await asyncio.gather(*(open_one(index) for index in range(args.streams)))
        held.open_s = time.perf_counter() - started
        responses = [response for response in opened if response is not None]
        held.opened, held.statuses = len(responses), {str(code): n for code, n in statuses.items()}
        extra = await session.get(args.url, headers={"Authorization": f"Bearer {tokens[0]}"})
        held.beyond_cap, held.beyond_cap_retry_after = extra.status, extra.headers.get("Retry-After")
        extra.close()

        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        holding = [asyncio.create_task(_hold(response, held, stop)) for response in responses]
        cpu_before = time.process_time()
        args.ready.write_bytes(orjson.dumps({"opened": held.opened}))
        await woken(stop, args.time_limit)
        held.cpu_s = time.process_time() - cpu_before
        stop.set()
        for task in holding:
            task.cancel()
        for task in holding:
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await task
        for response in responses:
            response.close()
    return held


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle_streams", description=__doc__)
    parser.add_argument("--url", required=True, help="the change feed's URL")
    parser.add_argument("--tokens", required=True, help="comma-separated bearer tokens, used in turn")
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--ready", type=Path, required=True, help="written once every stream is open")
    parser.add_argument("--out", type=Path, required=True, help="where to write what the streams saw, as JSON")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds the streams are held at most")
    args = parser.parse_args()
    held = uvloop.run(run(args))
    args.out.write_bytes(orjson.dumps(asdict(held)))


if __name__ == "__main__":
    main()
