"""The paced sender of scenario `latency`, a process of its own: open loop, then time until visible.

Notifications are signed up front and sent at fixed times (`rate` a second), each as its own task,
whether or not earlier ones were answered, so a slow server cannot slow the sender down and hide
its own delay. A notification is visible once every read model's checkpoint has passed the position
the webhook answered with: the view rows and the checkpoint commit in one transaction, and it is the
test `?minPosition=` makes. One probe reads the lowest checkpoint every 2 ms on one connection: 2 ms
of resolution, for about 3% of a core in PostgreSQL and 6% here (~400 reads/s). The alternative, a
GET with `?minPosition=` per notification, would add a waiting request per notification, each polling
the checkpoints every 10 ms in the server: under load, more work than the notifications. A few (1 in
`sample_every`) are read that way all the same, to time the path a client would take; once all are
visible, and the clock stopped, 1 in `check_every` installations is read back to check that its view
shows the notification. Latencies count from the time each notification was due to be sent.

    python -m bench.pacer --url http://127.0.0.1:PORT --secret whsec_... --database-url URL --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import uvloop

from bench.loadgen import Request, prepare
from bench.stats import percentile_ms
from projections import READ_MODELS

_PROBE_INTERVAL = 0.002
_SETTLE_TIMEOUT = 60.0
_LOWEST = (
    "SELECT CASE WHEN count(*) = cardinality($1::text[]) THEN min(position) ELSE 0 END"
    " FROM projection_checkpoints WHERE name = ANY($1::text[])"
)
_NAMES = [model.name for model in READ_MODELS]
_INSTALLATION = "installation:"


@dataclass(slots=True)
class Sent:
    due: float
    started: float = 0.0
    answered: float = 0.0
    status: int = 0
    position: int = 0
    stream_id: str = ""
    version: int = 0
    api_visible: float | None = None
    """When `?minPosition=` answered with the notification's version (sampled notifications only)."""
    stale: bool = False
    """A read whose view did not show the notification's version."""


@dataclass(frozen=True, slots=True)
class PaceResult:
    rate: float
    sent: int
    timed: int
    """Notifications due after the warm-up: the ones the figures are of."""
    statuses: dict[str, int]
    errors: dict[str, int]
    achieved_rate: float
    max_send_lag_ms: float
    """How late the sender started a request after it was due, at worst (the sender keeping up)."""
    visible_p50_ms: float | None
    visible_p99_ms: float | None
    visible_max_ms: float | None
    answered_p50_ms: float | None
    answered_p99_ms: float | None
    api_sampled: int
    api_p50_ms: float | None
    api_p99_ms: float | None
    checked: int
    """Installations read back once all were visible."""
    stale: int
    """Reads (sampled or checked) whose view did not show the notification's version: must be 0."""
    probes: int
    cpu_s: float
    wall_s: float


class Probe:
    """Reads the lowest checkpoint of the read models every 2 ms, and keeps when it rose."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn
        self.times: list[float] = []
        self.positions: list[int] = []
        self.reads = 0
        self._target: int | None = None
        self._reached = asyncio.Event()

    async def run(self) -> None:
        while True:
            lowest = await self._conn.fetchval(_LOWEST, _NAMES)
            now = time.perf_counter()
            self.reads += 1
            if not self.positions or lowest > self.positions[-1]:
                self.times.append(now)
                self.positions.append(lowest)
                if self._target is not None and lowest >= self._target:
                    self._reached.set()
            await asyncio.sleep(_PROBE_INTERVAL)

    async def reach(self, position: int, timeout: float) -> None:
        """Return once the checkpoints are at or past `position`, or after `timeout` seconds."""
        self._target = position
        if self.positions and self.positions[-1] >= position:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._reached.wait(), timeout)

    def visible_at(self, position: int) -> float | None:
        """The first time the probe saw the checkpoints at or past `position`."""
        index = bisect.bisect_left(self.positions, position)
        return self.times[index] if index < len(self.positions) else None


async def _send(session: aiohttp.ClientSession, base: str, request: Request, sent: Sent, sample: bool) -> None:
    url, body, headers = request
    sent.started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.read()
        sent.status = response.status
    sent.answered = time.perf_counter()
    if sent.status != 200:
        return
    doc = orjson.loads(answer)
    sent.position, sent.stream_id, sent.version = doc["position"], doc["streamId"], doc["version"]
    sampled = sample and sent.stream_id.startswith(_INSTALLATION)
    if sampled and await _shows(session, base, sent, f"?minPosition={sent.position}"):
        sent.api_visible = time.perf_counter()


async def _shows(session: aiohttp.ClientSession, base: str, sent: Sent, query: str = "") -> bool:
    """Whether the installation's view shows `sent` (its stream version); marks it stale if not."""
    target = f"{base}/v1/installations/{sent.stream_id.removeprefix(_INSTALLATION)}{query}"
    while True:
        async with session.get(target) as response:
            view = orjson.loads(await response.read())
        if response.status != 503:  # 503: not there within the server's bound; ask again, as a client would
            break
    sent.stale = response.status != 200 or view.get("version", 0) < sent.version
    return not sent.stale


async def send_paced(
    requests: Sequence[Request], rate: float, send: Callable[[int, Request, float], Awaitable[None]]
) -> dict[str, int]:
    """Start `send(index, request, due)` for each request at its due time, `rate` a second, open loop (a slow
    answer delays no later send); return the errors the sends raised, counted by type."""
    start = time.perf_counter() + 0.05
    tasks = []
    for index, request in enumerate(requests):
        due = start + index / rate
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(index, request, due)))
    errors: dict[str, int] = {}
    for outcome in await asyncio.gather(*tasks, return_exceptions=True):
        if isinstance(outcome, BaseException):
            errors[type(outcome).__name__] = errors.get(type(outcome).__name__, 0) + 1
    return errors


async def pace(args: argparse.Namespace) -> PaceResult:
    count = round(args.rate * (args.warmup + args.seconds))
    requests = prepare(f"{args.url}/webhooks/ampersand", count, args.secret, args.installations, args.seed)
    conn = await asyncpg.connect(args.database_url)
    probe = Probe(conn)
    probing = asyncio.create_task(probe.run())
    connector = aiohttp.TCPConnector(limit=args.connections)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        sends: list[Sent] = []

        def send(index: int, request: Request, due: float) -> Awaitable[None]:
            sends.append(sent := Sent(due))
            return _send(session, args.url, request, sent, index % args.sample_every == 0)

        errors = await send_paced(requests, args.rate, send)
        await probe.reach(max((sent.position for sent in sends), default=0), _SETTLE_TIMEOUT)
        wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
        probing.cancel()
        await asyncio.gather(probing, return_exceptions=True)
        await conn.close()
        checked = [s for s in sends[:: args.check_every] if s.status == 200 and s.stream_id.startswith(_INSTALLATION)]
        for sent in checked:
            await _shows(session, args.url, sent)
    return _result(args, sends, probe, errors=errors, checked=len(checked), cpu=cpu, wall=wall)


def _result(
    args: argparse.Namespace,
    sends: list[Sent],
    probe: Probe,
    *,
    errors: dict[str, int],
    checked: int,
    cpu: float,
    wall: float,
) -> PaceResult:
    statuses: dict[str, int] = {}
    for sent in sends:
        statuses[str(sent.status)] = statuses.get(str(sent.status), 0) + 1
    timed = [sent for sent in sends[round(args.rate * args.warmup) :] if sent.status == 200]
    visible, answered, api = [], [], []
    for sent in timed:
        seen = probe.visible_at(sent.position)
        if seen is None:
            errors["never visible"] = errors.get("never visible", 0) + 1
            continue
        visible.append(seen - sent.due)
        answered.append(sent.answered - sent.due)
        if sent.api_visible is not None:
            api.append(sent.api_visible - sent.due)
    visible.sort()
    answered.sort()
    api.sort()
    span = sends[-1].due - sends[0].due if len(sends) > 1 else 0.0
    return PaceResult(
        rate=args.rate,
        sent=len(sends),
        timed=len(timed),
        statuses=statuses,
        errors=errors,
        achieved_rate=(len(sends) - 1) / span if span else 0.0,
        max_send_lag_ms=max((sent.started - sent.due for sent in sends), default=0.0) * 1e3,
        visible_p50_ms=percentile_ms(visible, 0.50),
        visible_p99_ms=percentile_ms(visible, 0.99),
        visible_max_ms=visible[-1] * 1e3 if visible else None,
        answered_p50_ms=percentile_ms(answered, 0.50),
        answered_p99_ms=percentile_ms(answered, 0.99),
        api_sampled=len(api),
        api_p50_ms=percentile_ms(api, 0.50),
        api_p99_ms=percentile_ms(api, 0.99),
        checked=checked,
        stale=sum(sent.stale for sent in sends),
        probes=probe.reads,
        cpu_s=cpu,
        wall_s=wall,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pacer", description=__doc__)
    parser.add_argument("--url", required=True, help="the tracker's base URL")
    parser.add_argument("--secret", required=True)
    parser.add_argument("--database-url", required=True, help="where the probe reads the checkpoints")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=1_000, help="notifications a second")
    parser.add_argument("--seconds", type=float, default=30, help="timed seconds, after the warm-up")
    parser.add_argument("--warmup", type=float, default=2, help="seconds sent first, not counted")
    parser.add_argument("--installations", type=int, default=2_000)
    parser.add_argument("--sample-every", type=int, default=1_000, help="time 1 in N through ?minPosition=")
    parser.add_argument("--check-every", type=int, default=50, help="afterwards, read 1 in N back (installations)")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    result: dict[str, Any] = asdict(uvloop.run(pace(args)))
    args.out.write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main()
