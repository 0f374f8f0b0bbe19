"""Scenario `alerts`: alerts delivered while 1,000 notifications a second arrive, and what delivering costs ingest.

`tracker serve` runs as by default (its `tracker project` child folds the read models and, leading the alerts,
delivers them) on a fresh database per run, with one webhook subscription to a receiver on loopback, or, for
the baseline, with none. The receiver (`python -m bench.alerts receive`, a process of its own; see
`bench.alert_receiver`) notes when it read each request and answers 200. The paced sender (`python -m
bench.alerts pace`, open loop like `bench.pacer`; see `bench.alert_traffic`) posts signed notifications at
`rate` a second: `share` of them are `connection.error` and, `gap` seconds later, `connection.refreshed` on
the installations' connections, each opening or resolving its connection's issue (one alert each); the rest
are of types that open or resolve none. An alert is timed from when its notification was due to when the
receiver read it (both processes read CLOCK_MONOTONIC: one clock for the machine); the notifications are
timed as in `latency`, answered and visible (every read model's checkpoint past them), against the same run
without a subscription.

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
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import uvloop

from bench import database
from bench.alert_receiver import expected_transitions, receive, told
from bench.alert_traffic import pace
from bench.children import child_env
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
from bench.stats import Spread, spread
from bench.table import Row

DRAIN_TIMEOUT = 120.0
"""Seconds the deliveries may take to settle once the last notification is visible."""


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
    alerting = Alerting(args.rate, args.seconds, args.warmup, args.share, args.gap, args.installations)
    args.out.write_bytes(orjson.dumps(uvloop.run(pace(alerting, args))))


if __name__ == "__main__":
    main()
