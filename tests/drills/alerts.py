"""Drill `alerts`: every issue transition reaches a webhook receiver, through its outage and a SIGKILL.

One webhook subscription points at a receiver in the drill's own process (aiohttp on loopback), which checks
each request's Standard Webhooks signature with `standardwebhooks` and notes its `webhook-id` and the issue
it is about. Each of `connections` connections is sent `connection.error`, then `connection.refreshed`
(signed, re-sent until acknowledged, as the other drills' load is): two transitions each, opened and
resolved. The receiver first refuses connections (it does not listen), then answers 503 with `Retry-After`,
then 200. Once it has taken a share of the transitions, it holds one request's answer while the drill
kills the delivering process (the `tracker project` child of `tracker serve`, which leads the alerts) with
SIGKILL; `tracker serve` starts it again, and the new leader sends what was not recorded as delivered.

The verdict rests on what was sent and what the receiver heard, held against `alert_deliveries`
(`.alert_audit` says what must hold), and then on the audit every drill ends with (the log, the read models).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import signal
import time
from dataclasses import dataclass

import aiohttp
import asyncpg
import orjson
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)

from bench.database import throwaway_database

from ..notifications import connection_fields, notification
from .alert_audit import audit_alerts, expected_transitions, until
from .alert_receiver import UNAVAILABLE, UP, Receiver
from .audit import Audit
from .deliveries import Delivery, Record, Sender, session
from .harness import Setup, audit, served, settle
from .report import DrillResult, answers
from .trackers import DrillError, ServeProcess

RETRIES = ",".join(["0.2", "0.5", *["1"] * 120])
"""TRACKER_ALERT_RETRY_SCHEDULE: fast, and long enough (122 attempts, 2 minutes) to outlast the outage."""
_UNSENT_ONE = "1 ids in the log that the sender never sent"
"""How `audit_log` words the subscription's event: the one event in the log that no sender sent."""
RESTART_WAIT = 60.0
"""Seconds `tracker serve` has to start another `tracker project` after the SIGKILL (it waits 1 s first)."""


@dataclass(frozen=True, slots=True)
class AlertPlan:
    connections: int = 500
    """Each is sent `connection.error`, then `connection.refreshed`: two transitions."""
    refused: float = 3.0
    """Seconds the receiver goes on refusing connections once every transition has its row."""
    unavailable: float = 3.0
    """Seconds it then answers 503 (`Retry-After: 1`)."""
    kill_at: float = 0.4
    """The share of transitions taken (200) when the delivering process is killed."""
    workers: int = 16
    time_limit: float = 300.0
    """Seconds the whole drill may take, from the first notification to the last alert."""
    seed: int = 13

    @property
    def transitions(self) -> int:
        return 2 * self.connections


@dataclass(slots=True)
class Kill:
    """The SIGKILL of the delivering process, and its return."""

    pid: int = 0
    taken: int = 0
    """Transitions the receiver had taken when it held the answer."""
    at: float = 0.0
    restarted: float | None = None
    """Seconds from the SIGKILL until `tracker serve` had started another `tracker project`."""


def delivering(serve: ServeProcess, other_than: int = 0) -> psutil.Process | None:
    """The `tracker project` child of `serve`, which leads the alert deliveries (its only follower)."""
    try:
        children = psutil.Process(serve.pid).children()
    except psutil.Error:
        return None
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.pid != other_than and "project" in child.cmdline():
                return child
    return None


async def kill_delivering(serve: ServeProcess, receiver: Receiver, kill: Kill) -> None:
    """SIGKILL the delivering process while the receiver holds its request, and wait until it is gone."""
    process = delivering(serve)
    if process is None:
        msg = f"{serve.name} has no `tracker project` child to kill"
        raise DrillError(msg)
    kill.pid, kill.taken = process.pid, len(receiver.taken)
    process.send_signal(signal.SIGKILL)
    kill.at = time.monotonic()
    await asyncio.to_thread(process.wait, 30)


async def subscribe(serve: ServeProcess, url: str) -> tuple[str, str]:
    """Subscribe `url` to every transition; return the subscription's id and its signing secret."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{serve.base}/v1/alerts/subscriptions", json={"url": url}) as answer,
    ):
        created = await answer.json()
        if answer.status != 201:
            msg = f"subscribing {url} got {answer.status}: {created}"
            raise DrillError(msg)
    return created["id"], created["secret"]


async def discount_the_subscription(url: str, subscription_id: str, result: Audit) -> None:
    """The log holds one event that no sender sent: the subscription, an operator's action (it has no delivery
    id). Once that is shown to be the only such event, take it out of the audit's figures."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT stream_id, type FROM events WHERE metadata->>'deliveryId' IS NULL")
    finally:
        await conn.close()
    found = [(row["stream_id"], row["type"]) for row in rows]
    if found != [(f"alert_subscription:{subscription_id}", "tracker.alert_subscription.created")]:
        result.problems.append(f"events without a delivery id besides the subscription's: {found[:3]}")
        return
    result.stored -= 1
    result.problems = [problem for problem in result.problems if not problem.startswith(_UNSENT_ONE)]


def pairs(connections: int) -> tuple[list[Delivery], list[Delivery]]:
    """A `connection.error` and a `connection.refreshed` for each of `connections` new connections."""
    run = secrets.token_hex(4)
    errors, refreshes = [], []
    for index in range(connections):
        fields = connection_fields(f"conn-alerts-{run}-{index:05d}")
        error = notification("connection.error", **fields, errors=["token refresh failed: invalid_grant"])
        errors.append(Delivery(f"msg_{run}_error_{index:05d}", orjson.dumps(error)))
        refreshes.append(
            Delivery(f"msg_{run}_refreshed_{index:05d}", orjson.dumps(notification("connection.refreshed", **fields)))
        )
    return errors, refreshes


async def run(where: Setup, plan: AlertPlan) -> DrillResult:
    errors, refreshes = pairs(plan.connections)
    record = Record()
    kill = Kill()
    receiver = Receiver(where.ports.take(set()))  # bound at once: no server takes it
    env = {"TRACKER_ALERT_URL_ALLOW": receiver.prefix, "TRACKER_ALERT_RETRY_SCHEDULE": RETRIES,
           "TRACKER_ALERT_TIMEOUT": "5"}  # fmt: skip
    try:
        async with throwaway_database(where.database_url) as url:
            async with served(Setup(url, where.secret, where.work, where.ports), "alerts-serve", env=env) as (serve,):
                deadline = time.monotonic() + plan.time_limit
                subscription_id, receiver.secret = await subscribe(serve, receiver.url)
                started = time.monotonic()
                async with session(plan.workers) as http:
                    sender = Sender(http, where.secret, lambda _: serve.webhook, record=record, seed=plan.seed)
                    for phase in (errors, refreshes):  # a connection's refresh after its error, in the log too
                        await sender.send_all(phase, plan.workers, deadline)
                seconds = time.monotonic() - started
                expected = expected_transitions(record, errors, refreshes)
                conn = await asyncpg.connect(url)
                try:
                    refused = await _outage_and_kill(
                        conn, serve, receiver, kill=kill, plan=plan, expected=len(expected), deadline=deadline
                    )
                    found = await until(
                        conn, lambda c: c["pending"] == c["outbox"] == 0 and c.total() >= len(expected), deadline
                    )
                finally:
                    await conn.close()
                await settle([serve])
            result = await audit(url, record, [serve])
            await discount_the_subscription(url, subscription_id, result)
            alerts = await audit_alerts(url, expected, receiver)
    finally:
        await receiver.close()
    if found["pending"] or found["outbox"]:
        alerts.problems.append(f"deliveries still pending at the drill's deadline: {dict(found)}")
    result.problems += alerts.problems
    again = min((h.at for h in receiver.heard if h.status == 200 and h.at > kill.at), default=None)
    notes = [
        f"alert receiver: refused connections for {refused:.1f} s after the last notification's 2xx, then answered"
        f" 503 for {plan.unavailable:.1f} s; the tracker's attempts meanwhile: {alerts.refused_attempts:,} refused,"
        f" {alerts.unavailable_attempts:,} answered 503",
        f"SIGKILL of the delivering process (pid {kill.pid}, `tracker project` under `tracker serve`) at"
        f" {kill.taken:,}/{len(expected):,} transitions taken, its request's answer held; started again"
        f" {_seconds(kill.restarted)} later, delivering again {_seconds(again and again - kill.at)} after the kill",
        f"transitions: {len(expected):,} sent, {alerts.rows:,} rows, {alerts.delivered:,} delivered,"
        f" {alerts.received:,} taken by the receiver with a valid signature, {alerts.lost:,} lost,"
        f" {alerts.duplicates:,} taken twice or more (at-least-once); {len(receiver.heard):,} requests in all",
        f"answers: {answers(record)}",
    ]
    return DrillResult(
        "alerts",
        record.requests,
        seconds,
        f"alert receiver down {refused + plan.unavailable:.0f} s, SIGKILL of the delivering process",
        result,
        notes,
        {"alerts": alerts.as_json(), "statuses": {str(k): v for k, v in record.statuses.items()}},
    )


async def _outage_and_kill(
    conn: asyncpg.Connection,
    serve: ServeProcess,
    receiver: Receiver,
    *,
    kill: Kill,
    plan: AlertPlan,
    expected: int,
    deadline: float,
) -> float:
    """Refuse until every transition has its row and `plan.refused` more seconds, answer 503 for
    `plan.unavailable`, then take them, killing the delivering process at `plan.kill_at` of them; return the
    seconds it refused from the last notification's acknowledgement."""
    began = time.monotonic()
    fanned = await until(conn, lambda c: c.total() - c["outbox"] >= expected, deadline)
    if fanned.total() - fanned["outbox"] < expected:
        msg = f"only {fanned.total() - fanned['outbox']:,} of {expected:,} transitions fanned out: {dict(fanned)}"
        raise DrillError(msg)
    await asyncio.sleep(plan.refused)
    refused = time.monotonic() - began
    await receiver.listen(UNAVAILABLE)
    await asyncio.sleep(plan.unavailable)

    async def hold() -> None:
        await kill_delivering(serve, receiver, kill)

    receiver.hold, receiver.hold_at = hold, max(1, math.ceil(plan.kill_at * expected))
    receiver.mode = UP
    try:
        await asyncio.wait_for(receiver.holds.wait(), max(deadline - time.monotonic(), 0))
    except TimeoutError:
        msg = f"the receiver took {len(receiver.taken):,} transitions, not the {receiver.hold_at:,} due for the kill"
        raise DrillError(msg) from None
    assert receiver.holding is not None
    await receiver.holding
    restarted = None
    for _ in range(round(RESTART_WAIT / 0.05)):
        if (restarted := delivering(serve, other_than=kill.pid)) is not None:
            break
        await asyncio.sleep(0.05)
    if restarted is None:
        msg = f"{serve.name} did not start another `tracker project` after the SIGKILL:\n{serve.tail()}"
        raise DrillError(msg)
    kill.restarted = time.monotonic() - kill.at
    return refused


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"
