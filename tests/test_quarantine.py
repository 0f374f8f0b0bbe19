"""The quarantine's review: listing what was refused, replaying it after a fix, discarding it with a note."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tracker import Tracker
from tracker.ingest.parsing import SchemaError
from tracker.store.quarantine import QuarantineResolvedError, Refused

from .notifications import Signer, installation_event, new_id

Client = TestClient[web.Request, web.Application]
NOT_UNDERSTOOD = "test: parser did not know it then"


async def count(tracker: Tracker, table: str) -> int:
    return int(await tracker.pool.fetchval(f"SELECT count(*) FROM {table}"))


async def keep(tracker: Tracker, raw: bytes, source: str = "webhook", **fields: Any) -> int:
    """Keep a delivery as the pipeline does, and return its row id."""
    await tracker.quarantine.keep(Refused(source, fields.pop("reason", NOT_UNDERSTOOD), raw, **fields))
    return int(await tracker.pool.fetchval("SELECT max(id) FROM quarantine"))


def backfill_done(installation_id: str) -> bytes:
    """A valid webhook body: what a newer tracker would understand."""
    return orjson.dumps(installation_event("read.backfill.done", installation_id, objectName="account"))


async def test_the_list_is_newest_first_paged_filtered_and_shows_the_body(client: Client, tracker: Tracker) -> None:
    assert (await (await client.get("/v1/quarantine")).json()) == {"items": [], "nextCursor": None}
    first = await keep(tracker, b'{"not": "a notification"}', delivery_id="msg-1",
                       headers={"svix-id": "msg-1", "Authorization": "Bearer secret"})  # fmt: skip
    second = await keep(tracker, b"\xff\xfe not UTF-8", source="import", delivery_id="line:1")
    third = await keep(tracker, b"[]", delivery_id="msg-3")
    await tracker.discard_quarantined(third, "a test sent it")

    page = await (await client.get("/v1/quarantine?limit=2")).json()
    rest = await (await client.get(f"/v1/quarantine?limit=2&cursor={page['nextCursor']}")).json()

    assert [item["id"] for item in page["items"]] == [third, second]
    assert [item["id"] for item in rest["items"]] == [first]
    assert rest["nextCursor"] is None
    oldest = rest["items"][0]
    assert oldest["body"] == '{"not": "a notification"}'
    assert "bodyBase64" not in oldest
    assert oldest["headers"] == {"svix-id": "msg-1"}  # credentials are never kept
    assert (oldest["source"], oldest["deliveryId"], oldest["reason"]) == ("webhook", "msg-1", NOT_UNDERSTOOD)
    assert (oldest["status"], oldest["resolvedAt"], oldest["note"]) == ("pending", None, None)
    assert (oldest["replayedPosition"], oldest["lastReplayError"], oldest["problems"]) == (None, None, [])
    assert page["items"][1]["bodyBase64"] == "//4gbm90IFVURi04"  # b"\xff\xfe not UTF-8"
    assert "body" not in page["items"][1]

    by_source = await (await client.get("/v1/quarantine?source=import")).json()
    pending = await (await client.get("/v1/quarantine?status=pending")).json()
    discarded = await (await client.get("/v1/quarantine?status=discarded&source=webhook")).json()
    assert [item["id"] for item in by_source["items"]] == [second]
    assert [item["id"] for item in pending["items"]] == [second, first]
    assert [item["id"] for item in discarded["items"]] == [third]
    one = await client.get(f"/v1/quarantine/{first}")
    assert one.status == 200
    assert await one.json() == oldest


async def test_bad_list_queries_and_unknown_ids_are_refused(client: Client, tracker: Tracker) -> None:
    await keep(tracker, b"{}", delivery_id="msg-x")
    for query, reason in (("status=open", "status must be one of"), ("kind=x", "unknown filter"),
                          ("cursor=bogus", "cursor"), ("limit=0", "limit")):  # fmt: skip
        response = await client.get(f"/v1/quarantine?{query}")
        assert response.status == 400, query
        assert reason in (await response.json())["error"], query
    for path in ("/v1/quarantine/999", "/v1/quarantine/abc", "/v1/quarantine/99999999999999999999"):
        response = await client.get(path)
        assert response.status == 404, path
        assert "no quarantined delivery" in (await response.json())["error"]
    assert (await client.post("/v1/quarantine/999/replay")).status == 404
    assert (await client.delete("/v1/quarantine/999", json={"note": "x"})).status == 404


async def test_a_replay_that_is_still_refused_is_422_and_the_row_stays_pending_alone(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    body, headers = signer.signed(installation_event("read.backfill.done", new_id("inst")))  # objectName missing
    assert (await client.post("/webhooks/ampersand", data=body, headers=headers)).status == 422
    with pytest.raises(SchemaError):  # without a delivery id a second row could be kept: none may be
        await tracker.ingest(installation_event("read.backfill.done", new_id("inst")))
    rows = await tracker.pool.fetch("SELECT id, delivery_id FROM quarantine ORDER BY id")
    assert [row["delivery_id"] for row in rows] == [headers["svix-id"], None]

    for row in rows:
        response = await client.post(f"/v1/quarantine/{row['id']}/replay")

        assert response.status == 422
        answer = await response.json()
        assert "objectName" in answer["reason"]
        assert answer["problems"] == ["data.objectName: Field required"]
    assert await count(tracker, "quarantine") == 2
    assert await count(tracker, "events") == 0
    webhook_row = await (await client.get(f"/v1/quarantine/{rows[0]['id']}")).json()
    assert webhook_row["status"] == "pending"
    assert webhook_row["resolvedAt"] is None
    assert "objectName" in webhook_row["lastReplayError"]
    assert webhook_row["body"] == body.decode()


async def test_a_delivery_understood_now_replays_into_the_log_exactly_once(client: Client, tracker: Tracker) -> None:
    installation_id = new_id("inst")
    body = backfill_done(installation_id)
    kept_id = await keep(tracker, body, delivery_id="msg-late", headers={"svix-id": "msg-late"},
                         signature_verified=True)  # fmt: skip
    first_received = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    await tracker.pool.execute("UPDATE quarantine SET received_at = $1 WHERE id = $2", first_received, kept_id)
    await tracker.quarantine.record_replay_error(kept_id, "an earlier replay was refused")
    assert await count(tracker, "events") == 0

    response = await client.post(f"/v1/quarantine/{kept_id}/replay")
    again = await client.post(f"/v1/quarantine/{kept_id}/replay")

    assert response.status == 200
    appended = await response.json()
    assert appended["duplicate"] is False
    assert (appended["streamId"], appended["version"]) == (f"installation:{installation_id}", 1)
    assert again.status == 409
    assert (await again.json())["replayedPosition"] == appended["position"]
    assert await count(tracker, "events") == 1
    event = await tracker.pool.fetchrow("SELECT * FROM events")
    assert event["position"] == appended["position"]
    assert event["raw"] == body
    assert event["dedupe_key"] == "delivery:msg-late"
    assert event["received_at"] == first_received
    assert event["metadata"] == {
        "source": "webhook",
        "deliveryId": "msg-late",
        "receivedAt": first_received.isoformat(),
        "signatureVerified": True,
        "replayedFromQuarantine": kept_id,
    }
    row = await (await client.get(f"/v1/quarantine/{kept_id}")).json()
    assert (row["status"], row["replayedPosition"], row["lastReplayError"]) == ("replayed", appended["position"], None)
    assert row["resolvedAt"] is not None
    timeline = await (await client.get(f"/v1/installations/{installation_id}/events")).json()
    assert [(e["type"], e["metadata"]["deliveryId"]) for e in timeline["items"]] == [("read.backfill.done", "msg-late")]


async def test_a_replay_of_a_delivery_already_in_the_log_is_a_duplicate(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    body = backfill_done(new_id("inst"))
    arrived = await client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, msg_id="msg-again"))
    assert arrived.status == 200
    kept_id = await keep(tracker, body, delivery_id="msg-again")  # an earlier attempt, kept by an older tracker

    response = await client.post(f"/v1/quarantine/{kept_id}/replay")

    assert response.status == 200
    replayed = await response.json()
    assert replayed["duplicate"] is True
    assert replayed["position"] == (await arrived.json())["position"]
    assert await count(tracker, "events") == 1
    row = await tracker.quarantine.get(kept_id)
    assert row is not None
    assert (row.status, row.replayed_position) == ("replayed", replayed["position"])


async def test_the_parser_follows_the_source(client: Client, tracker: Tracker) -> None:
    record = orjson.dumps({"metadata": {"notificationType": "read.backfill.done"},
                           "data": orjson.loads(backfill_done(new_id("inst")))["data"]})  # fmt: skip
    as_kinesis = await keep(tracker, record, source="kinesis", delivery_id="kinesis-1")
    as_webhook = await keep(tracker, record, source="webhook", delivery_id="webhook-1")

    kinesis = await client.post(f"/v1/quarantine/{as_kinesis}/replay")
    webhook = await client.post(f"/v1/quarantine/{as_webhook}/replay")

    assert kinesis.status == 200
    assert webhook.status == 422  # a webhook body must be {"notificationType", "data"}
    assert "lacks notificationType" in (await webhook.json())["reason"]
    assert await count(tracker, "events") == 1


async def test_two_replays_at_once_append_one_event(client: Client, tracker: Tracker) -> None:
    kept_id = await keep(tracker, backfill_done(new_id("inst")), delivery_id="msg-race")

    responses = await asyncio.gather(*(client.post(f"/v1/quarantine/{kept_id}/replay") for _ in range(2)))

    assert sorted(r.status for r in responses) == [200, 409]
    assert await count(tracker, "events") == 1


async def test_discarding_needs_a_note_keeps_the_row_and_is_final(client: Client, tracker: Tracker) -> None:
    kept_id = await keep(tracker, b"junk", delivery_id="msg-junk")
    other_id = await keep(tracker, b"more junk", delivery_id="msg-junk-2")

    for kwargs in ({}, {"json": {"note": "  "}}, {"json": {"note": 3}}, {"data": b"not json"}):
        response = await client.delete(f"/v1/quarantine/{kept_id}", **kwargs)
        assert response.status == 400, kwargs
    assert (await tracker.quarantine.get(kept_id)).status == "pending"  # type: ignore[union-attr]

    response = await client.delete(f"/v1/quarantine/{kept_id}", json={"note": "a load test's junk"})
    by_query = await client.delete(f"/v1/quarantine/{other_id}", params={"note": "same load test"})

    assert response.status == 200
    discarded = await response.json()
    assert (discarded["id"], discarded["status"], discarded["note"]) == (kept_id, "discarded", "a load test's junk")
    assert discarded["resolvedAt"] is not None
    assert discarded["body"] == "junk"
    assert by_query.status == 200
    assert (await by_query.json())["note"] == "same load test"
    assert await tracker.pool.fetchval("SELECT raw FROM quarantine WHERE id = $1", kept_id) == b"junk"
    again = await client.delete(f"/v1/quarantine/{kept_id}", json={"note": "second thoughts"})
    replay = await client.post(f"/v1/quarantine/{kept_id}/replay")
    assert (again.status, replay.status) == (409, 409)
    assert (await replay.json())["reviewStatus"] == "discarded"
    assert (await tracker.quarantine.get(kept_id)).note == "a load test's junk"  # type: ignore[union-attr]
    assert await count(tracker, "quarantine") == 2


async def test_a_replay_that_lost_a_race_with_a_discard_still_records_its_event(tracker: Tracker) -> None:
    kept_id = await keep(tracker, backfill_done(new_id("inst")), delivery_id="msg-raced")
    await tracker.discard_quarantined(kept_id, "discarded while a replay ran")

    with pytest.raises(QuarantineResolvedError):
        await tracker.quarantine.mark_replayed(kept_id, 42)

    row = await tracker.quarantine.get(kept_id)
    assert row is not None
    assert (row.status, row.replayed_position, row.note) == ("discarded", 42, "discarded while a replay ran")


async def test_status_counts_the_quarantine_by_review_state(client: Client, tracker: Tracker) -> None:
    before = await (await client.get("/v1/status")).json()
    assert (before["quarantined"], before["quarantine"]) == (0, {"pending": 0, "replayed": 0, "discarded": 0})
    replayed = await keep(tracker, backfill_done(new_id("inst")), delivery_id="msg-a")
    discarded = await keep(tracker, b"junk", delivery_id="msg-b")
    await keep(tracker, b"pending", delivery_id="msg-c")
    await keep(tracker, b"pending too", delivery_id="msg-d")
    await tracker.replay_quarantined(replayed)
    await tracker.discard_quarantined(discarded, "junk")

    after = await (await client.get("/v1/status")).json()

    assert after["quarantined"] == 2  # pending only: what still awaits review
    assert after["quarantine"] == {"pending": 2, "replayed": 1, "discarded": 1}


async def test_a_replay_of_a_delivery_id_too_long_to_index_is_still_a_duplicate(tracker: Tracker) -> None:
    long_id = "msg_" + "x" * 300
    body = orjson.dumps(installation_event("read.backfill.done", new_id("inst"), objectName="account"))
    with pytest.raises(SchemaError):  # refused as it was first sent: kept under the hash of its id
        await tracker.ingest(body[:-2] + b', "objectName": 7}}', delivery_id=long_id)
    (kept,) = (await tracker.quarantined()).items
    assert kept.delivery_id != long_id and kept.full_delivery_id == long_id

    stored = await tracker.ingest(body, delivery_id=long_id)  # the same delivery, sent again and understood
    await tracker.pool.execute("UPDATE quarantine SET raw = $1 WHERE id = $2", body, kept.id)  # as fixed
    replayed = await tracker.replay_quarantined(kept.id)

    assert (replayed.duplicate, replayed.position) == (True, stored.position)
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 1
