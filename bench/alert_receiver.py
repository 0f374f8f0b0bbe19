"""The receiving side of scenario `alerts`: the receiver, a process of its own, and what its alerts say.

The receiver answers 200 to every alert and notes when it read it (CLOCK_MONOTONIC, the clock the paced sender
reads); `told` then holds the alerts against the transitions the pairs made and the rows of `alert_deliveries`,
checks each signature (`standardwebhooks`) and times each alert from its notification.

    python -m bench.alerts receive --port PORT --out FILE
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.children import LOOPBACK
from bench.stats import percentile_ms

CODE = "connection_error"

Key = tuple[str, str, int]
"""(transition, connection id, how often the issue was reopened before): one transition, as its alert tells."""


# The receiver, a process of its own.


def receive(port: int, out: Path) -> None:
    """Answer 200 to every alert, noting when it was read (CLOCK_MONOTONIC), its webhook headers and body; write
    them all to `out` once stopped (SIGTERM)."""
    heard: list[tuple[float, str, str, str, str]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        at = time.perf_counter()
        headers = request.headers
        heard.append((at, headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""),
                      headers.get("webhook-signature", ""), body.decode()))  # fmt: skip
        return web.Response(text="ok")

    async def write(_: web.Application) -> None:
        await asyncio.to_thread(out.write_bytes, orjson.dumps({"heard": heard, "cpu_s": time.process_time()}))

    app = web.Application()
    app.router.add_post("/hooks/{name}", handle)
    app.on_cleanup.append(write)
    web.run_app(app, host=LOOPBACK, port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


# What the alerts say, checked and timed.


@dataclass(slots=True)
class Told:
    """The alerts of a run, held against the transitions the pairs made and the rows of `alert_deliveries`."""

    expected: int = 0
    delivered: int = 0
    """Rows whose status is delivered."""
    received: int = 0
    """Transitions whose alert the receiver read, under their row's webhook-id, with a valid signature."""
    duplicates: int = 0
    """Requests beyond the first for one webhook-id (at-least-once)."""
    per_second: float | None = None
    """Alerts received a second while the timed notifications were sent (first receipts only)."""
    p50_ms: float | None = None
    """Notification due to alert read, of the transitions after the warm-up."""
    p99_ms: float | None = None
    drain_s: float | None = None
    """From the last notification's due time to the last alert read."""
    problems: list[str] = field(default_factory=list)


def expected_transitions(pairs: Sequence[Sequence[Any]]) -> dict[int, tuple[Key, float]]:
    """Position -> (the transition its notification makes, when the notification was due), from the pairs
    answered 200 (`[position, due, connection id, kind]`), in log order per connection: a connection's first
    error opens its issue, a refresh resolves it, a later error reopens it."""
    expected: dict[int, tuple[Key, float]] = {}
    reopened: dict[str, int] = {}
    open_now: set[str] = set()
    for position, due, connection_id, kind in sorted(pairs):
        if kind == "error" and connection_id not in open_now:
            count = reopened.get(connection_id)
            transition = "opened" if count is None else "reopened"
            reopened[connection_id] = 0 if count is None else count + 1
            expected[position] = ((transition, connection_id, reopened[connection_id]), due)
            open_now.add(connection_id)
        elif kind == "refreshed" and connection_id in open_now:
            expected[position] = (("resolved", connection_id, reopened[connection_id]), due)
            open_now.discard(connection_id)
    return expected


def told(
    pairs: Sequence[Sequence[Any]],
    heard: Sequence[Sequence[Any]],
    rows: Sequence[tuple[str, int, str]],
    secret: str,
    *,
    timed_from: float,
    last_due: float,
) -> Told:
    """Check and time the alerts: `heard` as the receiver wrote it, `rows` (webhook-id, position, status)."""
    expected = expected_transitions(pairs)
    result = Told(len(expected))
    problems = result.problems
    by_id = {webhook_id: position for webhook_id, position, _ in rows}
    statuses = [status for _, _, status in rows]
    result.delivered = statuses.count("delivered")
    if len(rows) != len(expected) or result.delivered != len(rows):
        problems.append(f"{len(expected):,} transitions made, {len(rows):,} rows, {result.delivered:,} delivered")
    if unexpected := {position for _, position, _ in rows} - expected.keys():
        problems.append(f"{len(unexpected)} rows of transitions no pair made, e.g. at {min(unexpected)}")
    first: dict[str, float] = {}
    wrong: list[str] = []
    for at, webhook_id, stamp, signature, body in heard:
        headers = {"webhook-id": webhook_id, "webhook-timestamp": stamp, "webhook-signature": signature}
        try:
            doc = Webhook(secret).verify(body, headers)
        except WebhookVerificationError:
            wrong.append(f"{webhook_id}: signature")
            continue
        position = by_id.get(webhook_id)
        issue = doc["data"]["issue"]
        key = (doc["type"].removeprefix("issue."), issue["entityId"], issue["reopened"])
        if position is None or position not in expected or expected[position][0] != key or issue["code"] != CODE:
            wrong.append(f"{webhook_id}: {key} at {position}")
            continue
        first.setdefault(webhook_id, at)
    if wrong:
        problems.append(f"{len(wrong)} alerts not as their rows say, e.g. {wrong[0]}")
    result.received = len(first)
    result.duplicates = len(heard) - len(wrong) - len(first)
    if lost := len(expected) - result.received:
        problems.append(f"{lost:,} transitions whose alert never reached the receiver")
    latencies = [at - expected[by_id[webhook_id]][1] for webhook_id, at in first.items()]
    timed = [at - due for webhook_id, at in first.items() if (due := expected[by_id[webhook_id]][1]) >= timed_from]
    if last_due > timed_from:
        result.per_second = sum(timed_from <= at <= last_due for at in first.values()) / (last_due - timed_from)
    result.p50_ms, result.p99_ms = percentile_ms(timed, 0.50), percentile_ms(timed, 0.99)
    result.drain_s = max(first.values()) - last_due if first else None
    if latencies and min(latencies) < 0:
        problems.append(f"an alert read {-min(latencies) * 1e3:.1f} ms before its notification was due")
    return result
