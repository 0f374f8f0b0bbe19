"""The traffic of scenario `alerts`: the notifications it sends, and the paced sender, a process of its own.

Quiet notifications, and pairs (`connection.error`, then `connection.refreshed` on the same connection) that
open and resolve connections' issues; signed up front and posted open loop at `rate` a second, as
`bench.pacer` does, each answer noted with the position it named, then timed until visible by the same probe.

    python -m bench.alerts pace --url http://127.0.0.1:PORT --secret whsec_... --database-url URL --out FILE
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import orjson

from bench import payloads
from bench.loadgen import Request, signed
from bench.pacer import Probe, send_paced
from bench.stats import percentile_ms

if TYPE_CHECKING:
    import argparse

    from bench.alerts import Alerting  # the scenario's shape; only its fields are read here

QUIET = frozenset({"installation.created", "installation.updated", "read.backfill.done", "read.triggered.done"})
"""The types of the rest of the load, and a successful `write.async.done`: none opens or resolves an issue."""
_SETTLE_TIMEOUT = 60.0

Pair = tuple[str, str]
"""(connection id, `error` or `refreshed`): a notification of the pairs."""


# The load: quiet notifications, and pairs that open and resolve connections' issues.


def notifications(alerting: Alerting, seed: int) -> list[tuple[dict[str, Any], Pair | None]]:
    """`rate` x (`warmup` + `seconds`) notifications, each with the pair it belongs to (None: a quiet one).

    Every `1/share`-th is of a pair. Pairs come in blocks of as many as are due in `gap` seconds: the block's
    errors, then the same connections' refreshes, so each refresh is sent about `gap` seconds after its error.
    Connections are the installations' own, taken in turn (a connection's second error reopens its issue).
    """
    count = round(alerting.rate * (alerting.warmup + alerting.seconds))
    every = max(1, round(1 / alerting.share))
    block = max(1, round(alerting.rate * alerting.share * alerting.gap))
    rng = random.Random(seed)
    quiet = (
        n
        for n in payloads.stream(2**62, alerting.installations, seed)
        if n["notificationType"] in QUIET or (n["notificationType"] == "write.async.done" and n["data"]["success"])
    )
    out: list[tuple[dict[str, Any], Pair | None]] = []
    slot = 0
    for index in range(count):
        if index % every != every - 1:
            out.append((next(quiet), None))
            continue
        group, within = divmod(slot, block)
        installation = ((group // 2) * block + within) % alerting.installations
        kind = "connection.error" if group % 2 == 0 else "connection.refreshed"
        notification = payloads.notification(kind, installation, rng, 0)
        out.append((notification, (notification["data"]["connectionId"], kind.removeprefix("connection."))))
        slot += 1
    return out


# The paced sender, a process of its own.


@dataclass(slots=True)
class Paced:
    due: float
    """time.perf_counter() (CLOCK_MONOTONIC) when it was due to be sent."""
    started: float = 0.0
    answered: float = 0.0
    status: int = 0
    position: int = 0


async def _post(session: aiohttp.ClientSession, request: Request, paced: Paced) -> None:
    url, body, headers = request
    paced.started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        answer = await response.read()
        paced.status = response.status
    paced.answered = time.perf_counter()
    if paced.status == 200:
        paced.position = orjson.loads(answer)["position"]


async def pace(alerting: Alerting, args: argparse.Namespace) -> dict[str, Any]:
    """Send `alerting`'s notifications to `args.url`, paced; return what was answered and when it was visible."""
    planned = notifications(alerting, args.seed)
    requests = signed(f"{args.url}/webhooks/ampersand", [n for n, _ in planned], args.secret)
    of_pairs = [pair for _, pair in planned]
    del planned  # the notifications as dicts: millions of objects for the collector to walk while it sends
    gc.collect()
    gc.freeze()  # what was built up front lives to the end: out of the collector's passes, which stall the sender
    conn = await asyncpg.connect(args.database_url)
    probe = Probe(conn)
    probing = asyncio.create_task(probe.run())
    connector = aiohttp.TCPConnector(limit=args.connections)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        sends: list[Paced] = []

        def send(_index: int, request: Request, due: float) -> Awaitable[None]:
            sends.append(paced := Paced(due))
            return _post(session, request, paced)

        errors = await send_paced(requests, args.rate, send)
        await probe.reach(max((paced.position for paced in sends), default=0), _SETTLE_TIMEOUT)
        wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
    probing.cancel()
    await asyncio.gather(probing, return_exceptions=True)
    await conn.close()
    return _paced(alerting, sends, of_pairs, probe, errors=errors, cpu=cpu, wall=wall)


def _paced(
    alerting: Alerting,
    sends: list[Paced],
    of_pairs: list[Pair | None],
    probe: Probe,
    *,
    errors: dict[str, int],
    cpu: float,
    wall: float,
) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for paced in sends:
        statuses[str(paced.status)] = statuses.get(str(paced.status), 0) + 1
    timed_from = sends[0].due + alerting.warmup
    timed = [paced for paced in sends if paced.due >= timed_from and paced.status == 200]
    visible, answered = [], []
    for paced in timed:
        seen = probe.visible_at(paced.position)
        if seen is None:
            errors["never visible"] = errors.get("never visible", 0) + 1
            continue
        visible.append(seen - paced.due)
        answered.append(paced.answered - paced.due)
    ok = [paced for paced in sends if paced.status == 200]
    span = max((paced.answered for paced in ok), default=0.0) - sends[0].due
    pairs = [
        [paced.position, paced.due, *pair]
        for paced, pair in zip(sends, of_pairs, strict=True)
        if pair is not None and paced.status == 200
    ]
    return {
        "sent": len(sends),
        "timed": len(timed),
        "timed_from": timed_from,
        "last_due": sends[-1].due,
        "statuses": statuses,
        "errors": errors,
        "achieved_rate": (len(sends) - 1) / (sends[-1].due - sends[0].due) if len(sends) > 1 else 0.0,
        "answered_rate": len(ok) / span if span > 0 else 0.0,
        "max_send_lag_ms": max((paced.started - paced.due for paced in sends), default=0.0) * 1e3,
        "answered_p50_ms": percentile_ms(answered, 0.50),
        "answered_p99_ms": percentile_ms(answered, 0.99),
        "visible_p50_ms": percentile_ms(visible, 0.50),
        "visible_p99_ms": percentile_ms(visible, 0.99),
        "cpu_s": cpu,
        "wall_s": wall,
        "pairs": pairs,
    }
