"""The load generator, a process of its own: 32 concurrent signed senders against one webhook URL.

Every request is built and Svix-signed before the clock starts, with a unique svix-id, so the timed
part spends the generator's CPU on HTTP only; the generator reports that CPU, because on two cores
it competes with the server it measures. With `--paths`, it sends GETs of those paths instead (one
per line of the file, in order, repeated as needed).

    python -m bench.loadgen --url http://127.0.0.1:PORT/webhooks/ampersand --secret whsec_... --out FILE
    python -m bench.loadgen --url http://127.0.0.1:PORT --paths FILE --workers 1 --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop
from standardwebhooks.webhooks import Webhook

from bench import payloads
from bench.stats import percentile

Request = tuple[str, bytes | None, dict[str, str]]
"""(URL, body, headers): a POST of the body, or a GET without one."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one run of the generator saw; `ok_total` counts warm-up answers too (for the log check)."""

    requests: int
    ok: int
    ok_total: int
    statuses: dict[str, int]
    errors: dict[str, int]
    wall_s: float
    cpu_s: float
    prepare_s: float
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    timed_out: bool


def prepare(url: str, count: int, secret: str, installations: int, seed: int) -> list[Request]:
    """Build and sign `count` requests."""
    return signed(url, payloads.stream(count, installations, seed), secret)


def signed(url: str, notifications: Iterable[dict[str, Any]], secret: str) -> list[Request]:
    """Sign each notification up front; run-unique svix-ids so repetitions never dedupe each other."""
    signer = Webhook(secret)
    now = datetime.now(tz=UTC)
    stamp = str(int(now.timestamp()))
    run = secrets.token_hex(4)
    requests: list[Request] = []
    for index, notification in enumerate(notifications):
        body = orjson.dumps(notification)
        msg_id = f"msg_{run}_{index:07d}"
        headers = {
            "svix-id": msg_id,
            "svix-timestamp": stamp,
            "svix-signature": signer.sign(msg_id, now, body.decode()),
            "content-type": "application/json",
        }
        requests.append((url, body, headers))
    return requests


def prepare_gets(base: str, paths: list[str], count: int) -> list[Request]:
    """`count` GETs of `base` + each path in turn."""
    return [(base + paths[index % len(paths)], None, {}) for index in range(count)]


class Sender:
    """Sends requests from a shared list with N workers and records status and latency of each."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        self.latencies_ns: list[int] = []
        self.statuses: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()

    async def send_all(self, requests: list[Request], workers: int, deadline: float) -> bool:
        """Send every request unless `deadline` (monotonic) passes first; True if it did."""
        indices = iter(range(len(requests)))  # shared: one event loop, so next() never races
        late = await asyncio.gather(*(self._work(requests, indices, deadline) for _ in range(workers)))
        return any(late)

    async def _work(self, requests: list[Request], indices: Iterator[int], deadline: float) -> bool:
        for index in indices:
            if time.monotonic() > deadline:
                return True
            url, body, headers = requests[index]
            method = "GET" if body is None else "POST"
            started = time.perf_counter_ns()
            try:
                async with self._session.request(method, url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.errors[type(exc).__name__] += 1
                continue
            self.latencies_ns.append(time.perf_counter_ns() - started)
            self.statuses[status] += 1
        return False


async def generate(requests: list[Request], warmup: int, workers: int, time_limit: float) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=workers)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        deadline = time.monotonic() + time_limit
        warm = Sender(session)
        await warm.send_all(requests[:warmup], workers, deadline)
        timed = Sender(session)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        timed_out = await timed.send_all(requests[warmup:], workers, deadline)
        wall = time.perf_counter() - wall_before
        cpu = time.process_time() - cpu_before
    latencies = sorted(ns / 1e6 for ns in timed.latencies_ns) or [float("nan")]
    ok = timed.statuses[200]
    return LoadResult(
        requests=len(requests) - warmup,
        ok=ok,
        ok_total=ok + warm.statuses[200],
        statuses={str(code): n for code, n in (timed.statuses + warm.statuses).items()},
        errors=dict(timed.errors + warm.errors),
        wall_s=wall,
        cpu_s=cpu,
        prepare_s=0.0,
        per_second=ok / wall if wall > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=latencies[-1],
        timed_out=timed_out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--url", required=True, help="the webhook's URL; with --paths, the base the paths follow")
    parser.add_argument("--secret", help="the webhook's signing secret (not with --paths)")
    parser.add_argument("--paths", type=Path, help="GET these paths (one a line) instead of posting notifications")
    parser.add_argument("--out", type=Path, required=True, help="where to write the result as JSON")
    parser.add_argument("--requests", type=int, default=20_000, help="timed requests")
    parser.add_argument("--warmup", type=int, default=1_000, help="untimed requests sent first")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--installations", type=int, default=2_000)
    parser.add_argument("--time-limit", type=float, default=120, help="seconds after which no request starts")
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    count = args.warmup + args.requests
    if args.paths:
        requests = prepare_gets(args.url, args.paths.read_text().split(), count)
    elif args.secret:
        requests = prepare(args.url, count, args.secret, args.installations, args.seed)
    else:
        parser.error("--secret is needed to sign notifications")
    prepared = time.perf_counter() - started
    result = uvloop.run(generate(requests, args.warmup, args.workers, args.time_limit))
    args.out.write_bytes(orjson.dumps({**asdict(result), "prepare_s": prepared}))


if __name__ == "__main__":
    main()
