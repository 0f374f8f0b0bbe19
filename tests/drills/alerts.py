"""Drill `alerts`: every issue transition reaches a webhook receiver, through its outage and a SIGKILL.

One webhook subscription points at a receiver in the drill's own process (aiohttp on loopback), which checks
each request's Standard Webhooks signature with `standardwebhooks` and notes its `webhook-id` and the issue
it is about. Each of `connections` connections is sent `connection.error`, then `connection.refreshed`
(signed, re-sent until acknowledged, as the other drills' load is): two transitions each, opened and
resolved. The receiver first refuses connections (it does not listen), then answers 503 with `Retry-After`,
then 200. Once it has taken a share of the transitions, it holds one request's answer while the drill
kills the delivering process (the `tracker project` child of `tracker serve`, which leads the alerts) with
SIGKILL; `tracker serve` starts it again, and the new leader sends what was not recorded as delivered.

The verdict rests on what was sent and what the receiver heard, held against `alert_deliveries`:

- each transition the acknowledged notifications make has one row, delivered, and reached the receiver with
  a valid signature at least once (none lost, counted from what was sent);
- one webhook-id per transition, its row's, with the same body on every attempt; a resolved alert never
  before its opened one was taken;
- the request whose answer the kill cut off came again; duplicates are counted (at-least-once), not failed;
- the outage was seen: the rows hold attempts refused and attempts answered 503;

and then the audit every drill ends with (the log, the read models).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import signal
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import orjson
import psutil  # type: ignore[import-untyped]  # (types-psutil is not a dependency)
from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from bench.children import LOOPBACK
from bench.database import throwaway_database

from ..notifications import connection_fields, notification
from .audit import Audit
from .deliveries import Delivery, Record, Sender, session
from .harness import Setup, audit, served, settle
from .report import DrillResult, answers
from .trackers import DrillError, ServeProcess

REFUSING, UNAVAILABLE, UP = "refusing", "unavailable", "up"
CODE = "connection_error"
RETRIES = ",".join(["0.2", "0.5", *["1"] * 120])
"""TRACKER_ALERT_RETRY_SCHEDULE: fast, and long enough (122 attempts, 2 minutes) to outlast the outage."""
_UNSENT_ONE = "1 ids in the log that the sender never sent"
"""How `audit_log` words the subscription's event: the one event in the log that no sender sent."""
RESTART_WAIT = 60.0
"""Seconds `tracker serve` has to start another `tracker project` after the SIGKILL (it waits 1 s first)."""
Key = tuple[str, str, str, str]
"""(transition, entity, entity id, code): one issue transition, as its row says and as an alert tells it."""


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


@dataclass(frozen=True, slots=True)
class Heard:
    """One request the receiver took."""

    at: float
    """time.monotonic() when it was read."""
    webhook_id: str
    key: Key | None
    """None: its signature did not verify."""
    body: bytes
    status: int
    """What the receiver answered."""


class Receiver:
    """The subscriber's end, on a loopback port bound from the start: refusing connections until `listen`,
    then answering as `mode` says (503, or 200 to a request whose signature verifies, 400 otherwise)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.secret = ""
        self.mode = REFUSING
        self.heard: list[Heard] = []
        self.taken: set[str] = set()
        """Webhook-ids answered 200."""
        self.hold: Callable[[], Awaitable[None]] | None = None
        """Run once, before answering the request that brings `taken` to `hold_at`."""
        self.hold_at = math.inf
        self.held: Heard | None = None
        self.holding: asyncio.Task[None] | None = None
        self.holds = asyncio.Event()
        """Set once `hold` has started."""
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind((LOOPBACK, port))  # bound, never listening until `listen`: connections are refused
        self._runner: web.AppRunner | None = None

    @property
    def prefix(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def url(self) -> str:
        return f"{self.prefix}hooks/drill"

    async def listen(self, mode: str) -> None:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()
        self.mode = mode

    async def close(self) -> None:
        if self.holding is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self.holding
        if self._runner is not None:
            await self._runner.cleanup()
        self._socket.close()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            doc = Webhook(self.secret).verify(body, dict(request.headers))
        except WebhookVerificationError:
            doc = None
        key = None if doc is None else transition_key(doc)
        status = 503 if self.mode == UNAVAILABLE else 200 if key is not None else 400
        heard = Heard(time.monotonic(), request.headers.get("webhook-id", ""), key, body, status)
        self.heard.append(heard)
        if status != 200:
            return web.Response(status=status, headers={"Retry-After": "1"} if status == 503 else None)
        self.taken.add(heard.webhook_id)
        if self.hold is not None and self.held is None and len(self.taken) >= self.hold_at:
            self.held = heard
            self.holding = asyncio.create_task(self.hold())
            self.holds.set()
            with contextlib.suppress(Exception):  # the drill awaits `holding` itself, and fails on its error
                await asyncio.shield(self.holding)
        return web.Response(text="ok")


def transition_key(doc: Any) -> Key:
    """The transition an alert tells of: `issue.opened` about connection X's `connection_error`, say."""
    issue = doc.get("data", {}).get("issue", {}) if isinstance(doc, dict) else {}
    kind = str(doc.get("type", "")) if isinstance(doc, dict) else ""
    return kind.removeprefix("issue."), str(issue.get("entity")), str(issue.get("entityId")), str(issue.get("code"))


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


async def counts(conn: asyncpg.Connection) -> Counter[str]:
    """Deliveries by status, and the transitions still in the outbox (as `outbox`)."""
    rows = await conn.fetch("SELECT status, count(*) AS n FROM alert_deliveries GROUP BY 1")
    found = Counter({row["status"]: int(row["n"]) for row in rows})
    found["outbox"] = int(await conn.fetchval("SELECT count(*) FROM alert_outbox"))
    return found


async def until(conn: asyncpg.Connection, done: Callable[[Counter[str]], bool], deadline: float) -> Counter[str]:
    """Poll `counts` until `done` says so or `deadline` passes; return the last counts."""
    while True:
        found = await counts(conn)
        if done(found) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


@dataclass(slots=True)
class AlertAudit:
    expected: int = 0
    """Transitions the acknowledged notifications make."""
    rows: int = 0
    delivered: int = 0
    """Rows whose status is delivered."""
    received: int = 0
    """Expected transitions the receiver took (200, valid signature) at least once."""
    lost: int = 0
    duplicates: int = 0
    """200 answers beyond the first to one webhook-id: at-least-once, reported, not failed."""
    refused_attempts: int = 0
    unavailable_attempts: int = 0
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def expected_transitions(record: Record, errors: list[Delivery], refreshes: list[Delivery]) -> set[Key]:
    """From what was sent: an acknowledged error opens its connection's issue, a refresh acknowledged after it
    (the second phase starts once the first is acknowledged) resolves it."""
    expected: set[Key] = set()
    for error, refresh in zip(errors, refreshes, strict=True):
        connection_id = orjson.loads(error.body)["data"]["connectionId"]
        if error.msg_id in record.acknowledged:
            expected.add(("opened", "connection", connection_id, CODE))
            if refresh.msg_id in record.acknowledged:
                expected.add(("resolved", "connection", connection_id, CODE))
    return expected


async def audit_alerts(url: str, expected: set[Key], receiver: Receiver) -> AlertAudit:
    """Hold the rows and what the receiver heard against the transitions sent."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT id, transition, entity, entity_id, code, status FROM alert_deliveries")
        outage = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE a->>'statusCode' IS NULL) AS refused,"
            " count(*) FILTER (WHERE a->>'statusCode' = '503') AS unavailable"
            " FROM alert_deliveries, jsonb_array_elements(attempts) AS a"
        )
    finally:
        await conn.close()
    assert outage is not None
    result = AlertAudit(len(expected), len(rows), refused_attempts=outage["refused"])
    result.unavailable_attempts = outage["unavailable"]
    problems = result.problems
    row_ids: defaultdict[Key, list[str]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    for row in rows:
        row_ids[(row["transition"], row["entity"], row["entity_id"], row["code"])].append(row["id"])
        statuses[row["status"]] += 1
    result.delivered = statuses["delivered"]
    if set(statuses) - {"delivered"}:
        problems.append(f"deliveries not delivered: {dict(statuses)}")
    if twice := [key for key, ids in row_ids.items() if len(ids) > 1]:
        problems.append(f"{len(twice)} transitions with more than one row, e.g. {twice[0]}")
    if missing := expected - row_ids.keys():
        problems.append(f"{len(missing)} transitions sent but with no row, e.g. {sorted(missing)[0]}")
    if unsent := row_ids.keys() - expected:
        problems.append(f"{len(unsent)} rows of transitions never sent, e.g. {sorted(unsent)[0]}")
    audit_heard(result, expected, {key: ids[0] for key, ids in row_ids.items()}, receiver.heard, receiver.held)
    return result


def audit_heard(
    result: AlertAudit, expected: set[Key], row_id: dict[Key, str], heard: list[Heard], held: Heard | None
) -> None:
    """Hold what the receiver heard, in order, against the transitions sent and the rows' ids; `held` is the
    request whose answer the SIGKILL cut off."""
    problems = result.problems
    ids_of: defaultdict[Key, set[str]] = defaultdict(set)
    keys_of: defaultdict[str, set[Key]] = defaultdict(set)
    bodies: defaultdict[str, set[bytes]] = defaultdict(set)
    taken: Counter[str] = Counter()
    first_taken: dict[Key, int] = {}
    first_heard: dict[Key, int] = {}
    unverified = 0
    for index, request in enumerate(heard):
        if request.key is None:
            unverified += 1
            continue
        ids_of[request.key].add(request.webhook_id)
        keys_of[request.webhook_id].add(request.key)
        bodies[request.webhook_id].add(request.body)
        first_heard.setdefault(request.key, index)
        if request.status == 200:
            taken[request.webhook_id] += 1
            first_taken.setdefault(request.key, index)
    received = expected & first_taken.keys()
    result.received, result.lost = len(received), len(expected - received)
    result.duplicates = sum(n - 1 for n in taken.values())
    if result.lost:
        problems.append(f"{result.lost} transitions never taken by the receiver, e.g. {sorted(expected - received)[0]}")
    if unverified:
        problems.append(f"{unverified} requests whose signature did not verify")
    if two := [key for key, ids in ids_of.items() if len(ids) > 1]:
        problems.append(f"{len(two)} transitions received under two webhook-ids or more, e.g. {two[0]}")
    if shared := [webhook_id for webhook_id, keys in keys_of.items() if len(keys) > 1]:
        problems.append(f"{len(shared)} webhook-ids told of two transitions or more, e.g. {shared[0]}")
    if other := [key for key, ids in ids_of.items() if key in row_id and ids != {row_id[key]}]:
        problems.append(f"{len(other)} transitions received under another webhook-id than their row's")
    if changed := [webhook_id for webhook_id, seen in bodies.items() if len(seen) > 1]:
        problems.append(f"{len(changed)} webhook-ids sent with different bodies, e.g. {changed[0]}")
    early = [
        key
        for key, index in first_heard.items()
        if key[0] == "resolved" and index < first_taken.get(("opened", *key[1:]), len(heard))
    ]
    if early:
        problems.append(f"{len(early)} resolved alerts sent before their opened one was taken, e.g. {early[0]}")
    if held is None:
        problems.append("the delivering process was never killed: the receiver did not take its share")
    elif taken[held.webhook_id] < 2:
        problems.append(f"{held.webhook_id}, whose answer the SIGKILL cut off, was not sent again")
    if not result.refused_attempts or not result.unavailable_attempts:
        problems.append(
            f"the outage was not seen: {result.refused_attempts} attempts refused,"
            f" {result.unavailable_attempts} answered 503"
        )


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
