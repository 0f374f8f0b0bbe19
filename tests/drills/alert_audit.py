"""The alerts drill's audit: the rows of `alert_deliveries` and what the receiver heard, against what was sent.

- each transition the acknowledged notifications make has one row, delivered, and reached the receiver with
  a valid signature at least once (none lost, counted from what was sent);
- one webhook-id per transition, its row's, with the same body on every attempt; a resolved alert never
  before its opened one was taken;
- the request whose answer the kill cut off came again; duplicates are counted (at-least-once), not failed;
- the outage was seen: the rows hold attempts refused and attempts answered 503.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from .alert_receiver import Heard, Key, Receiver
from .deliveries import Delivery, Record

CODE = "connection_error"


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
