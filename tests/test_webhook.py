"""The webhook's public contract: every answer it gives, and what it stores for each."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from dataclasses import replace

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tracker import Tracker
from tracker.ingest.signatures import SignatureError

from .conftest import SECRET, MakeTracker
from .notifications import Signer, config, installation_event, new_id
from .proxy import PostgresProxy

Client = TestClient[web.Request, web.Application]


async def count(tracker: Tracker, table: str) -> int:
    return int(await tracker.pool.fetchval(f"SELECT count(*) FROM {table}"))


async def test_a_signed_notification_is_stored_once_and_a_redelivery_is_a_duplicate(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    installation_id = new_id("inst")
    body, headers = signer.signed(installation_event("installation.created", installation_id, config=config()))

    first = await client.post("/webhooks/ampersand", data=body, headers=headers)
    again = await client.post("/webhooks/ampersand", data=body, headers=headers)

    assert first.status == 200
    assert again.status == 200
    first_body, again_body = await first.json(), await again.json()
    assert first_body["duplicate"] is False
    assert again_body["duplicate"] is True
    assert again_body["position"] == first_body["position"]
    row = await tracker.pool.fetchrow("SELECT * FROM events")
    assert await count(tracker, "events") == 1
    assert row["stream_id"] == f"installation:{installation_id}"
    assert row["version"] == 1
    assert row["type"] == "installation.created"
    assert row["raw"] == body
    assert row["dedupe_key"] == f"delivery:{headers['svix-id']}"
    assert row["metadata"]["signatureVerified"] is True
    assert row["metadata"]["deliveryId"] == headers["svix-id"]
    assert row["metadata"]["source"] == "webhook"
    # the payload is jsonb, queryable with SQL
    assert await tracker.pool.fetchval("SELECT payload->'data'->>'installationId' FROM events") == installation_id


async def test_webhook_prefixed_headers_are_accepted(client: Client, tracker: Tracker, signer: Signer) -> None:
    body, headers = signer.signed(installation_event("read.backfill.done", new_id("inst"), objectName="account"))
    renamed = {k.replace("svix-", "webhook-"): v for k, v in headers.items()}
    response = await client.post("/webhooks/ampersand", data=body, headers=renamed)
    assert response.status == 200
    assert await count(tracker, "events") == 1


async def test_wrong_missing_and_stale_signatures_are_refused_and_store_nothing(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    body, headers = signer.signed(installation_event("installation.created", new_id("inst"), config=config()))
    wrong = {**headers, "svix-signature": Signer("whsec_" + "QUJDREVGR0hJSktMTU5PUA==").headers(body)["svix-signature"]}
    missing = {k: v for k, v in headers.items() if k != "svix-signature"}
    stale = signer.headers(body, timestamp=time.time() - 6 * 60)
    tampered_body = body.replace(b"salesforce", b"hubspot")

    for bad_headers, bad_body in ((wrong, body), (missing, body), (stale, body), (headers, tampered_body)):
        response = await client.post("/webhooks/ampersand", data=bad_body, headers=bad_headers)
        assert response.status == 401, await response.text()
        assert (await response.json())["error"] == "signature verification failed"
    assert await count(tracker, "events") == 0
    assert await count(tracker, "quarantine") == 0


async def test_a_rotated_secret_is_accepted_next_to_the_new_one(make_tracker: MakeTracker) -> None:
    new_secret = "whsec_" + "QUJDREVGR0hJSktMTU5PUA=="
    rotated = make_tracker(webhook_secrets=(new_secret, SECRET), follow_projections=False)
    await rotated.start()
    async with TestClient(TestServer(rotated.web_app())) as c:
        for key in (SECRET, new_secret):
            body, headers = Signer(key).signed(installation_event("read.backfill.done", new_id("i"), objectName="a"))
            assert (await c.post("/webhooks/ampersand", data=body, headers=headers)).status == 200
    assert await count(rotated, "events") == 2


async def test_a_body_that_is_not_a_json_object_is_400_and_quarantined(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    for body in (b"not json at all", b"[1, 2, 3]", b'{"data": {}}'):
        headers = signer.headers(body)
        response = await client.post("/webhooks/ampersand", data=body, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"] == "not a notification"
    rows = await tracker.pool.fetch("SELECT raw, reason, delivery_id, source FROM quarantine ORDER BY id")
    assert [row["raw"] for row in rows] == [b"not json at all", b"[1, 2, 3]", b'{"data": {}}']
    assert all(row["source"] == "webhook" and row["delivery_id"].startswith("msg-") for row in rows)
    assert "not valid JSON" in rows[0]["reason"]
    assert await count(tracker, "events") == 0


async def test_a_known_type_failing_its_schema_is_422_names_the_problem_and_is_quarantined(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    payload = installation_event("read.backfill.done", new_id("inst"))  # objectName missing
    body, headers = signer.signed(payload)

    response = await client.post("/webhooks/ampersand", data=body, headers=headers)
    redelivered = await client.post("/webhooks/ampersand", data=body, headers=headers)

    assert response.status == 422
    assert redelivered.status == 422
    answer = await response.json()
    assert answer["type"] == "read.backfill.done"
    assert any("objectName" in problem for problem in answer["problems"])
    rows = await tracker.pool.fetch("SELECT raw, problems, delivery_id FROM quarantine")
    assert len(rows) == 1  # a redelivery of the same bad message is kept once
    assert rows[0]["raw"] == body
    assert rows[0]["delivery_id"] == headers["svix-id"]
    assert await count(tracker, "events") == 0


async def test_a_body_over_one_mebibyte_is_413(client: Client, tracker: Tracker, signer: Signer) -> None:
    payload = installation_event("installation.created", new_id("inst"), config={"blob": "x" * (1024 * 1024)})
    body, headers = signer.signed(payload)
    response = await client.post("/webhooks/ampersand", data=body, headers=headers)
    assert response.status == 413
    assert await count(tracker, "events") == 0


async def test_an_unknown_type_is_stored_and_shows_in_the_timeline(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    installation_id = new_id("inst")
    known, known_headers = signer.signed(installation_event("installation.created", installation_id, config=config()))
    unknown, unknown_headers = signer.signed(
        {"notificationType": "read.schedule.resumed", "data": {"installationId": installation_id, "why": "new"}}
    )
    assert (await client.post("/webhooks/ampersand", data=known, headers=known_headers)).status == 200
    response = await client.post("/webhooks/ampersand", data=unknown, headers=unknown_headers)

    assert response.status == 200
    assert (await response.json())["streamId"] == f"installation:{installation_id}"
    timeline = await (await client.get(f"/v1/installations/{installation_id}/events")).json()
    assert [event["type"] for event in timeline["items"]] == ["installation.created", "read.schedule.resumed"]
    assert timeline["items"][1]["data"] == {"installationId": installation_id, "why": "new"}


async def test_an_unknown_type_naming_no_entity_is_kept_in_a_stream_of_its_type(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    body, headers = signer.signed({"notificationType": "project.renamed", "data": {"projectId": "p"}})
    response = await client.post("/webhooks/ampersand", data=body, headers=headers)
    assert response.status == 200
    assert (await response.json())["streamId"] == "unrecognized:project.renamed"


async def test_a_database_that_is_down_gives_503_never_2xx(
    make_tracker: MakeTracker, signer: Signer, database_url: str
) -> None:
    async with PostgresProxy(database_url) as proxy:
        tracker = make_tracker(database_url=proxy.url, webhook_secrets=(SECRET,), follow_projections=False)
        await tracker.start()
        async with TestClient(TestServer(tracker.web_app())) as c:
            body, headers = signer.signed(installation_event("read.backfill.done", new_id("inst"), objectName="a"))
            await proxy.stop()  # the database becomes unreachable
            response = await c.post("/webhooks/ampersand", data=body, headers=headers)
            assert response.status == 503
            assert response.headers["Retry-After"] == "5"
            # Reads too: every route answers 503 through the API's middleware, never a 500.
            for path in ("/v1/installations", "/v1/status", "/v1/health", "/v1/issues", "/v1/quarantine"):
                read = await c.get(path)
                assert (read.status, read.headers.get("Retry-After")) == (503, "5"), path
            await proxy.start()  # back: the same delivery now lands
            response = await c.post("/webhooks/ampersand", data=body, headers=headers)
            assert response.status == 200
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM events") == 1
    finally:
        await conn.close()


async def test_concurrent_deliveries_share_transactions(client: Client, tracker: Tracker, signer: Signer) -> None:
    requests = [
        signer.signed(installation_event("read.backfill.done", new_id("inst"), objectName="a")) for _ in range(64)
    ]

    responses = await asyncio.gather(*(client.post("/webhooks/ampersand", data=b, headers=h) for b, h in requests))

    assert [r.status for r in responses] == [200] * 64
    assert await count(tracker, "events") == 64
    # xmin is the id of the transaction that inserted the row: fewer transactions than requests.
    transactions = await tracker.pool.fetchval("SELECT count(DISTINCT xmin::text) FROM events")
    assert transactions < 64


async def test_the_log_refuses_a_second_event_at_the_same_stream_version(tracker: Tracker) -> None:
    await tracker.ingest(installation_event("read.backfill.done", "inst-v", objectName="a"))
    with pytest.raises(asyncpg.UniqueViolationError, match="events_stream_version_key"):
        await tracker.pool.execute(
            "INSERT INTO events (stream_id, version, type, topic, payload, raw, metadata, dedupe_key, received_at)"
            " SELECT stream_id, version, type, topic, payload, raw, metadata, 'other-key', received_at FROM events"
        )


async def test_without_a_secret_only_loopback_clients_are_heard(make_tracker: MakeTracker) -> None:
    unsigned = make_tracker(webhook_secrets=(), follow_projections=False)
    await unsigned.start()
    body = orjson.dumps(installation_event("read.backfill.done", new_id("i"), objectName="a"))

    with pytest.raises(SignatureError, match="loopback clients only"):
        await unsigned.webhook.receive(body, {}, remote="203.0.113.7")
    appended = await unsigned.webhook.receive(body, {}, remote="127.0.0.1")

    assert appended.duplicate is False
    assert await count(unsigned, "events") == 1
    assert (await unsigned.pool.fetchval("SELECT metadata->>'signatureVerified' FROM events")) == "false"
    status = await unsigned.status()
    assert status["signaturesVerified"] is False
    assert any("NOT checked" in warning for warning in status["warnings"])


async def test_a_body_that_is_not_utf8_cannot_be_signed_and_is_401(client: Client, tracker: Tracker) -> None:
    headers = Signer(SECRET).headers(b"{}")  # a valid signature of another body: the body is checked first
    response = await client.post("/webhooks/ampersand", data=b'{"a": "\xff"}', headers=headers)
    assert response.status == 401
    assert "UTF-8" in (await response.json())["detail"]
    assert await count(tracker, "events") + await count(tracker, "quarantine") == 0


async def test_a_correctly_signed_body_that_is_not_utf8_is_401_and_nothing_is_kept(
    client: Client, tracker: Tracker
) -> None:
    """Signed over its very bytes, as a sender other than Svix could: still refused as unsigned, whatever the
    signing library would accept."""
    body = b'{"notificationType": "x.y", "data": {"a": "\xff"}}'
    msg_id, timestamp = new_id("msg"), str(int(time.time()))
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {"svix-id": msg_id, "svix-timestamp": timestamp, "svix-signature": "v1," + base64.b64encode(mac).decode()}
    response = await client.post("/webhooks/ampersand", data=body, headers=headers)
    assert response.status == 401
    assert "UTF-8" in (await response.json())["detail"]
    assert await count(tracker, "events") + await count(tracker, "quarantine") == 0


async def test_a_sender_too_slow_to_send_its_body_gets_408_and_stores_nothing(make_tracker: MakeTracker) -> None:
    tracker = make_tracker(webhook_secrets=(SECRET,), follow_projections=False)
    tracker.settings = replace(tracker.settings, body_read_timeout=0.3)
    await tracker.start()
    async with TestServer(tracker.web_app()) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        head = b"POST /webhooks/ampersand HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        writer.write(head + b'{"notificationType": ')  # and then nothing more
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert await count(tracker, "events") + await count(tracker, "quarantine") == 0
