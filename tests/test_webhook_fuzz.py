"""Fuzzing the webhook: random and mutated bodies, signed and unsigned, against the real database.

Whatever arrives: no 5xx, the server keeps answering, every signed body ends up either as an event or in
quarantine (under its delivery id), and nothing unsigned is stored.
"""

from __future__ import annotations

import os
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import Tracker

from .conftest import Signer
from .notifications import config, connection_fields, installation_fields, new_id, notification

Client = TestClient[web.Request, web.Application]
EXAMPLES = int(os.environ.get("TRACKER_FUZZ_EXAMPLES", "300"))
"""Per test; CI keeps the default, a long run sets e.g. TRACKER_FUZZ_EXAMPLES=2000."""
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
TYPES = st.sampled_from([
    "installation.created", "installation.updated", "read.backfill.done", "read.schedule.paused",
    "read.triggered.error", "write.async.done", "subscribe.create.error", "connection.error",
    "connection.deleted", "destination.webhook.disabled", "tracker.read_schedule.resumed", "future.type", "",
])  # fmt: skip


def _valid(kind: str) -> dict[str, Any]:
    if kind.startswith("connection."):
        return notification(kind, **connection_fields(new_id("conn")), errors=["expired"])
    if kind == "destination.webhook.disabled":
        return notification(kind, projectId="p", destinationId=new_id("dest"), destinationName="h", url="https://h")
    return notification(kind, **installation_fields(new_id("inst")), config=config(), objectName="account",
                        success=False, lastConfig=config())  # fmt: skip


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    """A valid notification, one mutated in its data or its bytes, or any JSON at all; always UTF-8, as
    Svix signs text (a body that is not UTF-8 cannot carry a valid signature: see test_webhook)."""
    choice = draw(st.sampled_from(["valid", "drop", "replace", "bytes", "json", "nested", "deep"]))
    payload = _valid(draw(TYPES))
    if choice == "drop":
        data = payload["data"]
        data.pop(draw(st.sampled_from(sorted(data))), None)
    elif choice == "replace":
        data = payload["data"]
        data[draw(st.sampled_from(sorted(data)))] = draw(JSON)
    elif choice == "json":
        return orjson.dumps(draw(JSON))
    elif choice == "nested":
        depth = draw(st.integers(1, 2_000))
        return b'{"notificationType": "installation.created", "data": ' + b"[" * depth + b"]" * depth + b"}"
    elif choice == "deep":  # nested inside the data object: past what the log's JSON encoder takes, or not
        depth = draw(st.integers(1, 2_000))
        deep = b"[" * depth + b"]" * depth
        return orjson.dumps(payload).replace(b'"data":{', b'"data":{"deep":' + deep + b",", 1)
    body = orjson.dumps(payload)
    if choice == "bytes":
        at = draw(st.integers(0, len(body)))
        mutated = body[:at] + draw(st.binary(max_size=20)) + body[at + draw(st.integers(0, 20)) :]
        return mutated.decode(errors="replace").encode()
    return body


async def _stored(tracker: Tracker, delivery_id: str) -> tuple[int, int]:
    events = await tracker.pool.fetchval("SELECT count(*) FROM events WHERE metadata->>'deliveryId' = $1", delivery_id)
    kept = await tracker.pool.fetchval("SELECT count(*) FROM quarantine WHERE delivery_id = $1", delivery_id)
    return int(events), int(kept)


@FUZZ
@given(body=bodies())
async def test_every_signed_body_becomes_an_event_or_stays_in_quarantine(
    client: Client, tracker: Tracker, signer: Signer, body: bytes
) -> None:
    delivery_id = new_id("msg")
    response = await client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, delivery_id))

    assert response.status in {200, 400, 422}, await response.text()
    events, kept = await _stored(tracker, delivery_id)
    assert (events, kept) == ((1, 0) if response.status == 200 else (0, 1))


@FUZZ
@given(body=bodies(), signature=st.sampled_from(["none", "wrong", "other-body"]))
async def test_nothing_unsigned_is_stored(
    client: Client, tracker: Tracker, signer: Signer, body: bytes, signature: str
) -> None:
    delivery_id = new_id("msg")
    headers = {"content-type": "application/json"}
    if signature == "wrong":
        headers = {**signer.headers(body, delivery_id), "svix-signature": "v1,AAAA"}
    elif signature == "other-body":
        headers = signer.headers(b"another body, not JSON", delivery_id)
    before = await tracker.pool.fetchval("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM quarantine)")

    response = await client.post("/webhooks/ampersand", data=body, headers=headers)

    assert response.status == 401
    after = await tracker.pool.fetchval("SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM quarantine)")
    assert after == before
    assert (await client.get("/v1/status")).status == 200  # still up
