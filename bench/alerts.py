"""Scenario `alerts`: alerts delivered while 1,000 notifications a second arrive, and what delivering costs ingest.

`tracker serve` runs as by default (its `tracker project` child folds the read models and, leading the alerts,
delivers them) on a fresh database per run, with one webhook subscription to a receiver on loopback, or, for
the baseline, with none. The receiver (`python -m bench.alerts receive`, a process of its own) notes when it
read each request and answers 200. The paced sender (`python -m bench.alerts pace`, open loop like
`bench.pacer`) posts signed notifications at `rate` a second: `share` of them are `connection.error` and,
`gap` seconds later, `connection.refreshed` on the installations' connections, each opening or resolving its
connection's issue (one alert each); the rest are of types that open or resolve none. An alert is timed
from when its notification was due to when the receiver read it (both processes read CLOCK_MONOTONIC: one
clock for the machine); the notifications are timed as in `latency`, answered and visible (every read
model's checkpoint past them), against the same run without a subscription.

Every notification must be answered 200 and stored; each transition must have one row, delivered, and reach
the receiver under that row's webhook-id with a valid signature (`standardwebhooks`); without a subscription,
nothing may be delivered.

    python -m bench.alerts receive --port PORT --out FILE
    python -m bench.alerts pace --url http://127.0.0.1:PORT --secret whsec_... --database-url URL --out FILE
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import uvloop
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench import database, payloads
from bench.children import LOOPBACK, child_env
from bench.harness import (
    CheckError,
    check_answers,
    command,
    drive,
    interleaved,
    listening,
    new_secret,
    per_request_us,
    tracker_serve,
)
from bench.loadgen import Request
from bench.pacer import Probe
from bench.stats import Spread, percentile, spread
from bench.table import Row

QUIET = frozenset({"installation.created", "installation.updated", "read.backfill.done", "read.triggered.done"})
"""The types of the rest of the load, and a successful `write.async.done`: none opens or resolves an issue."""
CODE = "connection_error"
DRAIN_TIMEOUT = 120.0
"""Seconds the deliveries may take to settle once the last notification is visible."""
_SETTLE_TIMEOUT = 60.0

Pair = tuple[str, str]
"""(connection id, `error` or `refreshed`): a notification of the pairs."""
Key = tuple[str, str, int]
"""(transition, connection id, how often the issue was reopened before): one transition, as its alert tells."""


@dataclass(frozen=True, slots=True)
class Alerting:
    rate: float
    seconds: float
    """Timed seconds, after the warm-up."""
    warmup: float
    share: float = 0.1
    """Of the notifications, those that open or resolve an issue (half each)."""
    gap: float = 1.0
    """Seconds between a connection's error and its refresh."""
    installations: int = 2_000


def summary(alerting: Alerting) -> str:
    return (
        f"alerts: {alerting.rate:,.0f} notifications/s for {alerting.seconds:,.0f} s after {alerting.warmup:,.0f} s"
        f" warm-up, {alerting.share:.0%} opening or resolving an issue, 1 webhook subscription and none"
    )


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


def signed(url: str, bodies: Sequence[dict[str, Any]], secret: str) -> list[Request]:
    """Sign every notification up front with a run-unique svix-id, as `bench.loadgen.prepare` does."""
    signer = Webhook(secret)
    now = datetime.now(tz=UTC)
    stamp = str(int(now.timestamp()))
    run = secrets.token_hex(4)
    requests: list[Request] = []
    for index, notification in enumerate(bodies):
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


async def pace(args: argparse.Namespace) -> dict[str, Any]:
    alerting = Alerting(args.rate, args.seconds, args.warmup, args.share, args.gap, args.installations)
    planned = notifications(alerting, args.seed)
    requests = signed(f"{args.url}/webhooks/ampersand", [n for n, _ in planned], args.secret)
    of_pairs = [pair for _, pair in planned]
    del planned  # the notifications as dicts: millions of objects for the collector to walk while it sends
    gc.collect()
    gc.freeze()  # what was built up front lives to the end: out of the collector's passes, which stall the sender
    conn = await asyncpg.connect(args.database_url)
    probe = Probe(conn)
    probing = asyncio.create_task(probe.run())
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=args.connections)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        start = time.perf_counter() + 0.05
        sends: list[Paced] = []
        tasks = []
        for index, request in enumerate(requests):
            due = start + index / args.rate
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            sends.append(paced := Paced(due))
            tasks.append(asyncio.create_task(_post(session, request, paced)))
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, BaseException):
                errors[type(outcome).__name__] = errors.get(type(outcome).__name__, 0) + 1
        await probe.reach(max((paced.position for paced in sends), default=0), _SETTLE_TIMEOUT)
        wall, cpu = time.perf_counter() - wall_before, time.process_time() - cpu_before
    probing.cancel()
    await asyncio.gather(probing, return_exceptions=True)
    await conn.close()
    return _paced(alerting, sends, of_pairs, probe, errors=errors, cpu=cpu, wall=wall)


def _ms(values: list[float], fraction: float) -> float | None:
    return percentile(sorted(values), fraction) * 1e3 if values else None


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
        "answered_p50_ms": _ms(answered, 0.50),
        "answered_p99_ms": _ms(answered, 0.99),
        "visible_p50_ms": _ms(visible, 0.50),
        "visible_p99_ms": _ms(visible, 0.99),
        "cpu_s": cpu,
        "wall_s": wall,
        "pairs": pairs,
    }


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
    result.p50_ms, result.p99_ms = _ms(timed, 0.50), _ms(timed, 0.99)
    result.drain_s = max(first.values()) - last_due if first else None
    if latencies and min(latencies) < 0:
        problems.append(f"an alert read {-min(latencies) * 1e3:.1f} ms before its notification was due")
    return result


# The runs.


@dataclass(frozen=True, slots=True)
class Run:
    subscribed: bool
    repetition: int
    result: dict[str, Any]
    """What the paced sender wrote, less its pairs."""
    told: dict[str, Any] | None
    """The alerts' Told; None without a subscription."""
    server_cpu_s: float
    database_cpu_s: float | None
    receiver_cpu_s: float


async def _subscribe(base: str, url: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{base}/v1/alerts/subscriptions", json={"url": url}) as answer,
    ):
        created = await answer.json()
        if answer.status != 201:
            msg = f"alerts: subscribing {url} got {answer.status}: {created}"
            raise CheckError(msg)
    secret: str = created["secret"]
    return secret


async def _following(base: str, timeout: float = 90) -> None:
    """Wait until a runner of every read model has beaten: the projection child is up, and leads."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{base}/v1/status") as answer:
                    projections = (await answer.json())["projections"] if answer.status == 200 else []
                if projections and all(p["heartbeatAgeSeconds"] is not None for p in projections):
                    return
            await asyncio.sleep(0.2)
    msg = f"alerts: no read model runner beat within {timeout:.0f} s"
    raise CheckError(msg)


async def _drained(url: str, expected: int) -> list[tuple[str, int, str]]:
    """Wait until the outbox is empty, `expected` deliveries exist and none is pending; return them all."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + DRAIN_TIMEOUT
        for _ in range(round(DRAIN_TIMEOUT / 0.05)):
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM alert_outbox) AS outbox, count(*) AS rows,"
                " count(*) FILTER (WHERE status = 'pending') AS pending FROM alert_deliveries"
            )
            assert row is not None
            settled = (row["outbox"], row["pending"]) == (0, 0) and row["rows"] >= expected
            if settled or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        found = await conn.fetch("SELECT id, position, status FROM alert_deliveries ORDER BY position")
    finally:
        await conn.close()
    return [(r["id"], r["position"], r["status"]) for r in found]


async def run_once(server_url: str, alerting: Alerting, subscribed: bool, *, work_dir: Path, repetition: int) -> Run:
    """One paced run on a fresh database, with one subscription to the receiver or none."""
    secret = new_secret()
    name = f"alerts-{'subscribed' if subscribed else 'none'}-{repetition}"
    heard_file = work_dir / f"{name}-heard.json"
    out = work_dir / f"{name}.json"
    async with database.throwaway_database(server_url) as url:
        receiving = listening(
            f"{name}-receiver",
            lambda port: command("bench.alerts", "receive", port=port, out=heard_file),
            child_env({}),
            work_dir,
        )
        async with receiving as receiver:
            allow = {"TRACKER_ALERT_URL_ALLOW": f"{receiver.base}/"}
            async with tracker_serve(f"{name}-serve", url, work_dir, secret=secret, **allow) as server:
                await _following(server.base)
                hook_secret = await _subscribe(server.base, f"{receiver.base}/hooks/bench") if subscribed else ""
                pacer = command(
                    "bench.alerts",
                    "pace",
                    url=server.base,
                    secret=secret,
                    database_url=url,
                    out=out,
                    rate=alerting.rate,
                    seconds=alerting.seconds,
                    warmup=alerting.warmup,
                    share=alerting.share,
                    gap=alerting.gap,
                    installations=alerting.installations,
                )
                driven = await drive(
                    server,
                    f"{name}-pacer",
                    pacer,
                    out,
                    work_dir=work_dir,
                    timeout=alerting.warmup + alerting.seconds + 180,
                    database_url=url,
                )
                pairs = driven.result.pop("pairs")
                rows = await _drained(url, len(expected_transitions(pairs)) if subscribed else 0)
        stored = await database.count_rows(url, "events")
    heard = orjson.loads(heard_file.read_bytes())
    result = driven.result
    _check(result, stored - (1 if subscribed else 0))  # the subscription is an event of the log too
    alerts = None
    if subscribed:
        alerts = told(pairs, heard["heard"], rows, hook_secret, timed_from=result["timed_from"],
                      last_due=result["last_due"])  # fmt: skip
        if alerts.problems:
            raise CheckError("alerts: " + "; ".join(alerts.problems))
    elif rows or heard["heard"]:
        msg = f"alerts: {len(rows)} deliveries and {len(heard['heard'])} alerts without a subscription"
        raise CheckError(msg)
    return Run(subscribed, repetition, result, None if alerts is None else asdict(alerts), driven.server_cpu_s,
               driven.database_cpu_s, heard["cpu_s"])  # fmt: skip


def _check(result: dict[str, Any], stored: int) -> None:
    check_answers("alerts", result)
    if stored != result["sent"]:
        msg = f"alerts: {result['sent']} notifications answered 200 but {stored} events in the log"
        raise CheckError(msg)


async def measure(server_url: str, alerting: Alerting, repetitions: int, work_dir: Path) -> list[Run]:
    async def once(subscribed: bool, repetition: int) -> Run:
        return await run_once(server_url, alerting, subscribed, work_dir=work_dir, repetition=repetition)

    def report(subscribed: bool, repetition: int, run: Run) -> str:
        result = run.result
        line = (
            f"alerts {'1 subscription' if subscribed else 'none'} #{repetition}: visible p99"
            f" {result['visible_p99_ms']:6.1f} ms, answered p99 {result['answered_p99_ms']:5.1f} ms,"
            f" {result['answered_rate']:,.0f}/s answered"
        )
        if run.told is not None:
            line += (
                f"; {run.told['received']:,} alerts, {run.told['per_second']:,.0f}/s, p50 {run.told['p50_ms']:.0f} ms"
                f" p99 {run.told['p99_ms']:.0f} ms, {run.told['duplicates']} duplicates"
            )
        return line

    return await interleaved(repetitions, (False, True), once, report)


def rows(runs: Sequence[Run], alerting: Alerting) -> list[Row]:
    def of(subscribed: bool, value: Callable[[Run], float | None]) -> Spread | None:
        return spread(value(run) for run in runs if run.subscribed is subscribed)

    def alerts(name: str) -> Callable[[Run], float | None]:
        return lambda run: None if run.told is None else run.told[name]

    def per_notification(seconds: Callable[[Run], float | None]) -> Callable[[Run], float | None]:
        return lambda run: per_request_us(seconds(run), run.result["sent"])

    at = f"at {alerting.rate:,.0f}/s ({alerting.share:.0%} opening or resolving an issue) for {alerting.seconds:,.0f} s"
    same = "the same run: notification to visible"
    table = [
        Row("alerts", f"alerts delivered/s, 1 webhook subscription, {at}", of(True, alerts("per_second")),
            "transitions made/s (offered)", Spread.of([alerting.rate * alerting.share])),
        Row("alerts", "notification to alert received p50 ms", of(True, alerts("p50_ms")), f"{same} p50",
            of(True, lambda r: r.result["visible_p50_ms"]), digits=1),
        Row("alerts", "notification to alert received p99 ms", of(True, alerts("p99_ms")), f"{same} p99",
            of(True, lambda r: r.result["visible_p99_ms"]), digits=1),
        Row("alerts", "last alert after the last notification, s", of(True, alerts("drain_s")), "", None, digits=2),
    ]  # fmt: skip
    without = "the same without a subscription"
    beside: tuple[tuple[str, Callable[[Run], float | None], int], ...] = (
        ("notifications answered/s", lambda r: r.result["answered_rate"], 0),
        ("webhook answered p99 ms", lambda r: r.result["answered_p99_ms"], 1),
        ("notification to visible p99 ms", lambda r: r.result["visible_p99_ms"], 1),
        ("sender late at most, ms", lambda r: r.result["max_send_lag_ms"], 1),
        ("generator CPU/wall % (sender + probe)", lambda r: 100 * r.result["cpu_s"] / r.result["wall_s"], 0),
        ("server CPU us/notification", per_notification(lambda r: r.server_cpu_s), 0),
        ("PostgreSQL CPU us/notification (with the probe)", per_notification(lambda r: r.database_cpu_s), 0),
    )
    table += [
        Row("alerts", f"{measure}, 1 webhook subscription", of(True, value), without, of(False, value), digits=digits)
        for measure, value, digits in beside
    ]
    return table


def as_json(runs: Sequence[Run]) -> list[dict[str, Any]]:
    return [asdict(run) for run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    receiver = commands.add_parser("receive", help="the alerts' receiver")
    receiver.add_argument("--port", type=int, required=True)
    receiver.add_argument("--out", type=Path, required=True)
    sender = commands.add_parser("pace", help="the paced sender")
    sender.add_argument("--url", required=True, help="the tracker's base URL")
    sender.add_argument("--secret", required=True)
    sender.add_argument("--database-url", required=True, help="where the probe reads the checkpoints")
    sender.add_argument("--out", type=Path, required=True)
    sender.add_argument("--rate", type=float, default=1_000, help="notifications a second")
    sender.add_argument("--seconds", type=float, default=30, help="timed seconds, after the warm-up")
    sender.add_argument("--warmup", type=float, default=2, help="seconds sent first, not counted")
    sender.add_argument("--share", type=float, default=0.1, help="of the notifications, those of the pairs")
    sender.add_argument("--gap", type=float, default=1.0, help="seconds from a connection's error to its refresh")
    sender.add_argument("--installations", type=int, default=2_000)
    sender.add_argument("--connections", type=int, default=256)
    sender.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    if args.command == "receive":
        receive(args.port, args.out)
        return
    args.out.write_bytes(orjson.dumps(uvloop.run(pace(args))))


if __name__ == "__main__":
    main()
